namespace Moldau.Broker.Authorization;

/// <summary>
/// Decides whether the principal of a request may perform an operation on a resource. Handlers
/// ask it through <see cref="AuthorizedOperations"/>; the security work replaces the allow-all
/// default with one that answers from ACLs.
/// </summary>
internal interface IAuthorizer
{
    /// <summary>Whether the request's principal may perform <paramref name="operation"/> on the resource.</summary>
    bool Authorize(RequestContext context, AclOperation operation, ResourceType type, string name);

    /// <summary>Whether the principal may perform <paramref name="operation"/> on some resource of <paramref name="type"/> (Kafka's authorizeByResourceType).</summary>
    bool AuthorizeAny(RequestContext context, AclOperation operation, ResourceType type);
}

/// <summary>No authorizer configured: every operation is allowed, as Kafka without <c>authorizer.class.name</c>.</summary>
internal sealed class AllowAllAuthorizer : IAuthorizer
{
    /// <summary>The one instance.</summary>
    public static AllowAllAuthorizer Instance { get; } = new();

    public bool Authorize(RequestContext context, AclOperation operation, ResourceType type, string name) => true;

    public bool AuthorizeAny(RequestContext context, AclOperation operation, ResourceType type) => true;
}
