using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DescribeAcls: the ACLs a filter matches, grouped by resource pattern, for a principal with
/// DESCRIBE on the cluster; SECURITY_DISABLED when no authorizer is configured, as Kafka's AclApis.
/// </summary>
internal sealed class DescribeAclsHandler(BrokerState state) : IApiHandler<DescribeAclsRequest, DescribeAclsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeAclsResponse> HandleAsync(RequestContext context, DescribeAclsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeAclsResponse ErrorResponse(RequestContext context, DescribeAclsRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, ErrorMessage = null };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public DescribeAclsResponse Handle(RequestContext context, DescribeAclsRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        if (state.Authorizer is not AclAuthorizer)
        {
            return new DescribeAclsResponse { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = "No Authorizer is configured." };
        }

        var filter = new AclFilter(
            (ResourceType)(byte)request.ResourceTypeFilter,
            request.ResourceNameFilter,
            // v0 knows literal patterns only: its ANY means any literal one.
            context.Version == 0 ? PatternType.Literal : (PatternType)(byte)request.PatternTypeFilter,
            request.PrincipalFilter,
            request.HostFilter,
            (AclOperation)(byte)request.Operation,
            (AclPermissionType)(byte)request.PermissionType);
        if (filter.Invalid() is { } why)
        {
            return new DescribeAclsResponse { ErrorCode = (short)ErrorCode.InvalidRequest, ErrorMessage = why };
        }

        return new DescribeAclsResponse
        {
            ErrorMessage = null,
            Resources = [.. state.Topics.Image.Acls.Matching(filter)
                .GroupBy(a => (a.ResourceType, a.ResourceName, a.PatternType))
                .Select(g => new DescribeAclsResponse.DescribeAclsResource
                {
                    ResourceType = (sbyte)g.Key.ResourceType,
                    ResourceName = g.Key.ResourceName,
                    PatternType = (sbyte)g.Key.PatternType,
                    Acls = [.. g.Select(a => new DescribeAclsResponse.AclDescription { Principal = a.Principal, Host = a.Host, Operation = (sbyte)a.Operation, PermissionType = (sbyte)a.Permission })],
                })],
        };
    }
}
