using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>LeaveGroup: one member (v0-v2) or a batch of members, static ones by instance id (v3+).</summary>
internal sealed class LeaveGroupHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<LeaveGroupRequest, LeaveGroupResponse>
{
    /// <inheritdoc/>
    public ValueTask<LeaveGroupResponse> HandleAsync(RequestContext context, LeaveGroupRequest request, CancellationToken cancellationToken) =>
        // Read on the group, as Kafka.
        authorizer.OnGroup(context, AclOperation.Read, request.GroupId) ? new(HandleAsync(context, request)) : ValueTask.FromResult(ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed));

    /// <inheritdoc/>
    public LeaveGroupResponse ErrorResponse(RequestContext context, LeaveGroupRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<LeaveGroupResponse> HandleAsync(RequestContext context, LeaveGroupRequest request)
    {
        var leaving = context.Version >= 3
            ? request.Members.Select(m => (m.MemberId, m.GroupInstanceId)).ToList()
            : [(request.MemberId, (string?)null)];
        var (error, members) = await coordinator.LeaveAsync(request.GroupId, leaving).ConfigureAwait(false);
        return new LeaveGroupResponse
        {
            // v3+ answers each member on its own (a top-level error only when none could be
            // answered), as Kafka does; before, the one member's error is the top-level one.
            ErrorCode = (short)(context.Version >= 3 && members.Count == leaving.Count ? Protocol.ErrorCode.None : error),
            Members = members.Select(m => new LeaveGroupResponse.MemberResponse { MemberId = m.MemberId, GroupInstanceId = m.InstanceId, ErrorCode = (short)m.Error }).ToList(),
        };
    }
}
