using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise).</summary>
internal sealed class DeleteGroupsHandler(GroupCoordinator coordinator) : IApiHandler<DeleteGroupsRequest, DeleteGroupsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DeleteGroupsResponse> HandleAsync(RequestContext context, DeleteGroupsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(request));

    /// <inheritdoc/>
    public DeleteGroupsResponse ErrorResponse(RequestContext context, DeleteGroupsRequest request, ErrorCode error) =>
        new() { Results = [.. request.GroupsNames.Select(g => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)error })] };

    public DeleteGroupsResponse Handle(DeleteGroupsRequest request) => new()
    {
        Results = request.GroupsNames.Select(g => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)coordinator.Delete(g) }).ToList(),
    };
}
