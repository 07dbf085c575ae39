using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>SyncGroup: the leader's assignment in, each member's share out.</summary>
internal sealed class SyncGroupHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<SyncGroupRequest, SyncGroupResponse>
{
    /// <inheritdoc/>
    public ValueTask<SyncGroupResponse> HandleAsync(RequestContext context, SyncGroupRequest request, CancellationToken cancellationToken) =>
        // Read on the group, as Kafka.
        authorizer.OnGroup(context, AclOperation.Read, request.GroupId) ? new(HandleAsync(context, request)) : ValueTask.FromResult(ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed));

    /// <inheritdoc/>
    public SyncGroupResponse ErrorResponse(RequestContext context, SyncGroupRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    public async Task<SyncGroupResponse> HandleAsync(RequestContext context, SyncGroupRequest request)
    {
        var result = await coordinator.SyncAsync(
            request.GroupId,
            request.GenerationId,
            request.MemberId,
            request.GroupInstanceId,
            context.Version >= 5 ? request.ProtocolType : null,
            context.Version >= 5 ? request.ProtocolName : null,
            request.Assignments.Select(a => (a.MemberId, a.Assignment)).ToList()).ConfigureAwait(false);
        return new SyncGroupResponse { ErrorCode = result.Error, ProtocolType = result.ProtocolType, ProtocolName = result.ProtocolName, Assignment = result.Assignment };
    }
}
