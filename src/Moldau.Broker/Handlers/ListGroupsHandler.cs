using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>ListGroups: every classic group, filtered by state (v4+).</summary>
internal sealed class ListGroupsHandler(GroupCoordinator coordinator) : IApiHandler<ListGroupsRequest, ListGroupsResponse>
{
    /// <inheritdoc/>
    public ValueTask<ListGroupsResponse> HandleAsync(RequestContext context, ListGroupsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(request));

    /// <inheritdoc/>
    public ListGroupsResponse ErrorResponse(RequestContext context, ListGroupsRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    public ListGroupsResponse Handle(ListGroupsRequest request)
    {
        var types = request.TypesFilter;
        var groups = types.Count > 0 && !types.Contains("classic", StringComparer.OrdinalIgnoreCase) ? [] : coordinator.List(request.StatesFilter);
        return new ListGroupsResponse
        {
            Groups = groups.Select(g => new ListGroupsResponse.ListedGroup { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = g.State, GroupType = "classic" }).ToList(),
        };
    }
}
