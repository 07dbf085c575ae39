using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// CreateAcls: for a principal with ALTER on the cluster, the valid bindings go to the metadata
/// log in one batch; an invalid one (unknown or filter-only codes, an empty name, a cluster not
/// named kafka-cluster, a principal without a type) gets INVALID_REQUEST, as Kafka's controller
/// answers; SECURITY_DISABLED for all when no authorizer is configured.
/// </summary>
internal sealed class CreateAclsHandler(BrokerState state) : IApiHandler<CreateAclsRequest, CreateAclsResponse>
{
    /// <inheritdoc/>
    public ValueTask<CreateAclsResponse> HandleAsync(RequestContext context, CreateAclsRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public CreateAclsResponse ErrorResponse(RequestContext context, CreateAclsRequest request, ErrorCode error) =>
        new() { Results = [.. request.Creations.Select(_ => new CreateAclsResponse.AclCreationResult { ErrorCode = (short)error, ErrorMessage = null })] };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public CreateAclsResponse Handle(RequestContext context, CreateAclsRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Alter, ResourceType.Cluster, AuthorizedOperations.ClusterName))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        if (state.Authorizer is not AclAuthorizer)
        {
            return new CreateAclsResponse
            {
                Results = [.. request.Creations.Select(_ => new CreateAclsResponse.AclCreationResult { ErrorCode = (short)ErrorCode.SecurityDisabled, ErrorMessage = "No Authorizer is configured." })],
            };
        }

        var results = new List<CreateAclsResponse.AclCreationResult>(request.Creations.Count);
        var valid = new List<AclBinding>();
        foreach (var c in request.Creations)
        {
            var binding = new AclBinding(
                Uuid.Zero,
                (ResourceType)(byte)c.ResourceType,
                c.ResourceName,
                // v0 has no pattern type: every binding is literal.
                context.Version == 0 ? PatternType.Literal : (PatternType)(byte)c.ResourcePatternType,
                c.Principal,
                c.Host,
                (AclOperation)(byte)c.Operation,
                (AclPermissionType)(byte)c.PermissionType);
            var why = AclBinding.Invalid(binding);
            results.Add(why is null
                ? new CreateAclsResponse.AclCreationResult { ErrorMessage = null }
                : new CreateAclsResponse.AclCreationResult { ErrorCode = (short)ErrorCode.InvalidRequest, ErrorMessage = why });
            if (why is null)
            {
                valid.Add(binding);
            }
        }

        state.Topics.CreateAcls(valid);
        return new CreateAclsResponse { Results = results };
    }
}
