using System.Net;
using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>JoinGroup: waits for the join phase; the leader gets the members' subscriptions.</summary>
internal sealed class JoinGroupHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<JoinGroupRequest, JoinGroupResponse>
{
    /// <inheritdoc/>
    public ValueTask<JoinGroupResponse> HandleAsync(RequestContext context, JoinGroupRequest request, CancellationToken cancellationToken) =>
        // Read on the group, as Kafka.
        authorizer.OnGroup(context, AclOperation.Read, request.GroupId) ? new(HandleAsync(context, request)) : ValueTask.FromResult(ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed));

    /// <inheritdoc/>
    public JoinGroupResponse ErrorResponse(RequestContext context, JoinGroupRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, GenerationId = -1, MemberId = string.Empty, Leader = string.Empty };

    public async Task<JoinGroupResponse> HandleAsync(RequestContext context, JoinGroupRequest request)
    {
        var host = context.Connection.Remote is IPEndPoint ip ? "/" + ip.Address : "/unknown";
        var result = await coordinator.JoinAsync(new JoinRequest(
            request.GroupId,
            request.MemberId,
            request.GroupInstanceId,
            context.Header.ClientId ?? string.Empty,
            host,
            request.SessionTimeoutMs,
            context.Version >= 1 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs,
            request.ProtocolType,
            request.Protocols.Select(p => (p.Name, p.Metadata)).ToList(),
            RequireKnownMemberId: context.Version >= 4,
            SupportsSkipAssignment: context.Version >= 9)).ConfigureAwait(false);
        return new JoinGroupResponse
        {
            ErrorCode = result.Error,
            GenerationId = result.GenerationId,
            ProtocolType = result.ProtocolType,
            ProtocolName = result.ProtocolName ?? (context.Version >= 7 ? null : string.Empty),
            Leader = result.LeaderId,
            MemberId = result.MemberId,
            SkipAssignment = result.SkipAssignment,
            Members = result.Members.Select(m => new JoinGroupResponse.JoinGroupResponseMember { MemberId = m.MemberId, GroupInstanceId = m.InstanceId, Metadata = m.Metadata }).ToList(),
        };
    }
}
