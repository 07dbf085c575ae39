using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>Heartbeat: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.</summary>
internal sealed class HeartbeatHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<HeartbeatRequest, HeartbeatResponse>
{
    /// <inheritdoc/>
    public ValueTask<HeartbeatResponse> HandleAsync(RequestContext context, HeartbeatRequest request, CancellationToken cancellationToken) =>
        // Read on the group, as Kafka.
        authorizer.OnGroup(context, AclOperation.Read, request.GroupId) ? new(HandleAsync(request)) : ValueTask.FromResult(ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed));

    /// <inheritdoc/>
    public HeartbeatResponse ErrorResponse(RequestContext context, HeartbeatRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<HeartbeatResponse> HandleAsync(HeartbeatRequest request) =>
        new() { ErrorCode = (short)await coordinator.HeartbeatAsync(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId).ConfigureAwait(false) };
}
