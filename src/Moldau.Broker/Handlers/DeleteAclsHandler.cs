using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DeleteAcls: for a principal with ALTER on the cluster, every ACL a filter matches (MATCH
/// filters included) is removed from the metadata log in one batch, and each filter's result lists
/// what it matched; a filter with a code this broker does not know gets INVALID_REQUEST;
/// SECURITY_DISABLED for all when no authorizer is configured.
/// </summary>
internal sealed class DeleteAclsHandler(BrokerState state) : IApiHandler<DeleteAclsRequest, DeleteAclsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DeleteAclsResponse> HandleAsync(RequestContext context, DeleteAclsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DeleteAclsResponse ErrorResponse(RequestContext context, DeleteAclsRequest request, ErrorCode error) =>
        new() { FilterResults = [.. request.Filters.Select(_ => new DeleteAclsResponse.DeleteAclsFilterResult { ErrorCode = (short)error, ErrorMessage = null })] };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public DeleteAclsResponse Handle(RequestContext context, DeleteAclsRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Alter, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        if (state.Authorizer is not AclAuthorizer)
        {
            return new DeleteAclsResponse
            {
                FilterResults = [.. request.Filters.Select(_ => new DeleteAclsResponse.DeleteAclsFilterResult { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = "No Authorizer is configured." })],
            };
        }

        var filters = request.Filters.Select(f => new AclFilter(
            (ResourceType)(byte)f.ResourceTypeFilter,
            f.ResourceNameFilter,
            context.Version == 0 ? PatternType.Literal : (PatternType)(byte)f.PatternTypeFilter,
            f.PrincipalFilter,
            f.HostFilter,
            (AclOperation)(byte)f.Operation,
            (AclPermissionType)(byte)f.PermissionType)).ToList();
        var usable = filters.Where(f => f.Invalid() is null).ToList();
        var deleted = state.Topics.DeleteAcls(usable);
        var results = new List<DeleteAclsResponse.DeleteAclsFilterResult>(filters.Count);
        var next = 0;
        foreach (var filter in filters)
        {
            if (filter.Invalid() is { } why)
            {
                results.Add(new DeleteAclsResponse.DeleteAclsFilterResult { ErrorCode = (short)ErrorCode.InvalidRequest, ErrorMessage = why });
                continue;
            }

            results.Add(new DeleteAclsResponse.DeleteAclsFilterResult
            {
                ErrorMessage = null,
                MatchingAcls = [.. deleted[next++].Select(a => new DeleteAclsResponse.DeleteAclsMatchingAcl
                {
                    ErrorMessage = null,
                    ResourceType = (sbyte)a.ResourceType,
                    ResourceName = a.ResourceName,
                    PatternType = (sbyte)a.PatternType,
                    Principal = a.Principal,
                    Host = a.Host,
                    Operation = (sbyte)a.Operation,
                    PermissionType = (sbyte)a.Permission,
                })],
            });
        }

        return new DeleteAclsResponse { FilterResults = results };
    }
}
