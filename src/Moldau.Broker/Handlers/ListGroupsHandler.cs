using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>ListGroups: every group, classic and consumer protocol, filtered by state (v4+) and type (v5).</summary>
internal sealed class ListGroupsHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<ListGroupsRequest, ListGroupsResponse>
{
    /// <inheritdoc/>
    public ValueTask<ListGroupsResponse> HandleAsync(RequestContext context, ListGroupsRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public ListGroupsResponse ErrorResponse(RequestContext context, ListGroupsRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<ListGroupsResponse> HandleAsync(RequestContext context, ListGroupsRequest request)
    {
        // Describe on the cluster lists every group; without it, the groups the principal may describe.
        var all = authorizer.OnCluster(context, AclOperation.Describe);
        var types = request.TypesFilter;
        var groups = (await coordinator.ListAsync(request.StatesFilter).ConfigureAwait(false)).Where(g => types.Count == 0 || types.Contains(g.Type, StringComparer.OrdinalIgnoreCase));
        return new ListGroupsResponse
        {
            Groups = groups.Where(g => all || authorizer.OnGroup(context, AclOperation.Describe, g.GroupId)).Select(g => new ListGroupsResponse.ListedGroup { GroupId = g.GroupId, ProtocolType = g.ProtocolType, GroupState = g.State, GroupType = g.Type }).ToList(),
        };
    }
}
