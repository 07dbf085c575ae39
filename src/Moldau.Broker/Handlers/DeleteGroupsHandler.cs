using Moldau.Broker.Authorization;
using Moldau.Broker.Cluster;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise). In cluster mode the group's offsets
/// in PostgreSQL go too, also when only PostgreSQL knows the group (its coordinator moved here).
/// </summary>
internal sealed class DeleteGroupsHandler(GroupCoordinator coordinator, IAuthorizer authorizer, IGroupOffsetStore? stored = null) : IApiHandler<DeleteGroupsRequest, DeleteGroupsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DeleteGroupsResponse> HandleAsync(RequestContext context, DeleteGroupsRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public DeleteGroupsResponse ErrorResponse(RequestContext context, DeleteGroupsRequest request, ErrorCode error) =>
        new() { Results = [.. request.GroupsNames.Select(g => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)error })] };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<DeleteGroupsResponse> HandleAsync(RequestContext context, DeleteGroupsRequest request)
    {
        // Delete on each group, as Kafka.
        var errors = await Task.WhenAll(request.GroupsNames.Select(g => authorizer.OnGroup(context, AclOperation.Delete, g)
            ? DeleteAsync(g)
            : Task.FromResult(ErrorCode.GroupAuthorizationFailed))).ConfigureAwait(false);
        return new DeleteGroupsResponse
        {
            Results = request.GroupsNames.Select((g, i) => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)errors[i] }).ToList(),
        };
    }

    private async Task<ErrorCode> DeleteAsync(string groupId)
    {
        var local = await coordinator.DeleteAsync(groupId).ConfigureAwait(false);
        if (stored is null || (local != ErrorCode.None && local != ErrorCode.GroupIdNotFound))
        {
            return local;
        }

        if (local == ErrorCode.GroupIdNotFound && await stored.LoadAsync(groupId).ConfigureAwait(false) is { Count: 0 })
        {
            return local; // unknown here and nothing stored
        }

        return await stored.DeleteGroupAsync(groupId).ConfigureAwait(false);
    }
}
