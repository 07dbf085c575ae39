using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DeleteGroups: empty groups only (NON_EMPTY_GROUP otherwise).</summary>
internal sealed class DeleteGroupsHandler(GroupCoordinator coordinator)
{
    public DeleteGroupsResponse Handle(DeleteGroupsRequest request) => new()
    {
        Results = request.GroupsNames.Select(g => new DeleteGroupsResponse.DeletableGroupResult { GroupId = g, ErrorCode = (short)coordinator.Delete(g) }).ToList(),
    };
}
