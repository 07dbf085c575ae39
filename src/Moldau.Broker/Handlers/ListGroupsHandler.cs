using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>ListGroups: every classic group, filtered by state (v4+).</summary>
internal sealed class ListGroupsHandler(GroupCoordinator coordinator) : IApiHandler<ListGroupsRequest, ListGroupsResponse>
{
    /// <inheritdoc/>
    public ValueTask<ListGroupsResponse> HandleAsync(RequestContext context, ListGroupsRequest request, CancellationToken cancellationToken) => new(HandleAsync(request));

    /// <inheritdoc/>
    public ListGroupsResponse ErrorResponse(RequestContext context, ListGroupsRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
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
