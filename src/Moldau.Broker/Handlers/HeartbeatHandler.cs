using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>Heartbeat: keeps a member's session; REBALANCE_IN_PROGRESS tells it to rejoin.</summary>
internal sealed class HeartbeatHandler(GroupCoordinator coordinator)
{
    public HeartbeatResponse Handle(HeartbeatRequest request) =>
        new() { ErrorCode = (short)coordinator.Heartbeat(request.GroupId, request.GenerationId, request.MemberId, request.GroupInstanceId) };
}
