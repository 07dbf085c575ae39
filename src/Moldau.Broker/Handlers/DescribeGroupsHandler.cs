using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeGroups: state, protocol and members with their subscriptions and assignments, and (v3+, when asked) the operations allowed on the group.</summary>
internal sealed class DescribeGroupsHandler(GroupCoordinator coordinator, IAuthorizer authorizer)
{
    public async Task<DescribeGroupsResponse> HandleAsync(RequestContext context, DescribeGroupsRequest request)
    {
        var described = await Task.WhenAll(request.Groups.Select(coordinator.DescribeAsync)).ConfigureAwait(false);
        return new DescribeGroupsResponse
        {
            Groups = described.Select(d => new DescribeGroupsResponse.DescribedGroup
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
            }).ToList(),
        };
    }
}
