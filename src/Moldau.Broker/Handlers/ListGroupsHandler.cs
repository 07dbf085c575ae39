using Moldau.Coordinator;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>ListGroups: every classic group, filtered by state (v4+).</summary>
internal sealed class ListGroupsHandler(GroupCoordinator coordinator)
{
    public async Task<ListGroupsResponse> HandleAsync(ListGroupsRequest request)
    {
        var types = request.TypesFilter;
        var groups = types.Count > 0 && !types.Contains("classic", StringComparer.OrdinalIgnoreCase) ? [] : await coordinator.ListAsync(request.StatesFilter).ConfigureAwait(false);
        return new ListGroupsResponse
        {
            Groups = groups.Select(g => new ListGroupsResponse.ListedGroup { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = g.State, GroupType = "classic" }).ToList(),
        };
    }
}
