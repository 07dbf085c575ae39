using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise).</summary>
internal sealed class DeleteGroupsHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<DeleteGroupsRequest, DeleteGroupsResponse>
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
            ? coordinator.DeleteAsync(g)
            : Task.FromResult(ErrorCode.GroupAuthorizationFailed))).ConfigureAwait(false);
        return new DeleteGroupsResponse
        {
            Results = request.GroupsNames.Select((g, i) => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)errors[i] }).ToList(),
        };
    }
}
