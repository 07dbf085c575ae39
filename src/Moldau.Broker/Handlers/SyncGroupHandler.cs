using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>SyncGroup: the leader's assignment in, each member's share out.</summary>
internal sealed class SyncGroupHandler(GroupCoordinator coordinator) : IApiHandler<SyncGroupRequest, SyncGroupResponse>
{
    /// <inheritdoc/>
    public ValueTask<SyncGroupResponse> HandleAsync(RequestContext context, SyncGroupRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

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
