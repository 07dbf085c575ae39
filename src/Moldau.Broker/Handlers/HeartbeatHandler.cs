using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>Heartbeat: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.</summary>
internal sealed class HeartbeatHandler(GroupCoordinator coordinator) : IApiHandler<HeartbeatRequest, HeartbeatResponse>
{
    /// <inheritdoc/>
    public ValueTask<HeartbeatResponse> HandleAsync(RequestContext context, HeartbeatRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(request));

    /// <inheritdoc/>
    public HeartbeatResponse ErrorResponse(RequestContext context, HeartbeatRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    public HeartbeatResponse Handle(HeartbeatRequest request) =>
        new() { ErrorCode = (short)coordinator.Heartbeat(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId) };
}
