using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeGroups: state, protocol and members with their subscriptions and assignments, and (v3+, when asked) the operations allowed on the group.</summary>
internal sealed class DescribeGroupsHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<DescribeGroupsRequest, DescribeGroupsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeGroupsResponse> HandleAsync(RequestContext context, DescribeGroupsRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public DescribeGroupsResponse ErrorResponse(RequestContext context, DescribeGroupsRequest request, ErrorCode error) =>
        new() { Groups = [.. request.Groups.Select(g => new DescribeGroupsResponse.DescribedGroup { GroupId = g, ErrorCode = (short)error, GroupState = string.Empty, ProtocolType = string.Empty, ProtocolData = string.Empty, AuthorizedOperations = int.MinValue })] };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<DescribeGroupsResponse> HandleAsync(RequestContext context, DescribeGroupsRequest request)
    {
        // Describe on each group, as Kafka; a refused group is answered alone, with empty fields.
        var allowed = request.Groups.Select(g => authorizer.OnGroup(context, AclOperation.Describe, g)).ToArray();
        var described = await Task.WhenAll(request.Groups.Where((_, i) => allowed[i]).Select(coordinator.DescribeAsync)).ConfigureAwait(false);
        var refused = ErrorResponse(context, new DescribeGroupsRequest { Groups = [.. request.Groups.Where((_, i) => !allowed[i])] }, ErrorCode.GroupAuthorizationFailed).Groups;
        return new DescribeGroupsResponse
        {
            Groups = [.. described.Select(d => new DescribeGroupsResponse.DescribedGroup
            {
                GroupId = d.GroupId,
                GroupState = d.State,
                ProtocolType = d.ProtocolType,
                ProtocolData = d.ProtocolName,
                AuthorizedOperations = context.Version >= 3 && request.IncludeAuthorizedOperations
                    ? AuthorizedOperations.For(authorizer, context, ResourceType.Group, d.GroupId)
                    : AuthorizedOperations.NotRequested,
                Members = d.Members.Select(m => new DescribeGroupsResponse.DescribedGroupMember
                {
                    MemberId = m.MemberId,
                    GroupInstanceId = m.InstanceId,
                    ClientId = m.ClientId,
                    ClientHost = m.ClientHost,
                    MemberMetadata = m.Metadata,
                    MemberAssignment = m.Assignment,
                }).ToList(),
            }), .. refused],
        };
    }
}
