using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>Heartbeat: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.</summary>
internal sealed class HeartbeatHandler(GroupCoordinator coordinator)
{
    public async Task<HeartbeatResponse> HandleAsync(HeartbeatRequest request) =>
        new() { ErrorCode = (short)await coordinator.HeartbeatAsync(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId).ConfigureAwait(false) };
}
