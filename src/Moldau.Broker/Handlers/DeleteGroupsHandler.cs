using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise).</summary>
internal sealed class DeleteGroupsHandler(GroupCoordinator coordinator)
{
    public async Task<DeleteGroupsResponse> HandleAsync(DeleteGroupsRequest request)
    {
        var errors = await Task.WhenAll(request.GroupsNames.Select(coordinator.DeleteAsync)).ConfigureAwait(false);
        return new DeleteGroupsResponse
        {
            Results = request.GroupsNames.Select((g, i) => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)errors[i] }).ToList(),
        };
    }
}
