using Moldau.Broker.Topics;

namespace Moldau.Broker.Authorization;

/// <summary>
/// The authorizer of <c>authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer</c>
/// (or the older <c>kafka.security.authorizer.AclAuthorizer</c>, which Moldau treats alike: both
/// answer from ACLs; here they live in the metadata log). Its rules are Kafka's:
/// <list type="bullet">
/// <item>a principal of <c>super.users</c> may do everything;</item>
/// <item>the ACLs that apply are those of the resource's literal name, of the literal <c>*</c> and
/// of every prefixed pattern the name starts with, whose principal is the request's or <c>User:*</c>
/// and whose host is the peer's IP or <c>*</c>;</item>
/// <item>a DENY for the operation (or ALL) wins over any ALLOW;</item>
/// <item>an ALLOW grants its operation, ALL grants every one, and READ, WRITE, DELETE or ALTER
/// also grant DESCRIBE, ALTER_CONFIGS also DESCRIBE_CONFIGS;</item>
/// <item>with no ACL at all on the resource (for anyone), <c>allow.everyone.if.no.acl.found</c>
/// (default false) decides.</item>
/// </list>
/// A check reads the current <see cref="AclTable"/> once and looks the resource up in its index.
/// </summary>
internal sealed class AclAuthorizer : IAuthorizer
{
    /// <summary>KRaft's authorizer class, as <c>authorizer.class.name</c> names it.</summary>
    public const string StandardAuthorizerClass = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

    /// <summary>ZooKeeper-era Kafka's authorizer class, accepted as a synonym.</summary>
    public const string LegacyAuthorizerClass = "kafka.security.authorizer.AclAuthorizer";

    /// <summary>The principal every user matches in an ACL.</summary>
    public const string WildcardPrincipal = "User:*";

    /// <summary>The host every peer matches in an ACL.</summary>
    public const string WildcardHost = "*";

    private readonly Func<AclTable> _acls;
    private readonly HashSet<string> _superUsers;
    private readonly bool _allowIfNoAcl;

    /// <summary>An authorizer over the ACLs <paramref name="acls"/> returns at each check.</summary>
    public AclAuthorizer(Func<AclTable> acls, IEnumerable<string> superUsers, bool allowEveryoneIfNoAclFound)
    {
        _acls = acls;
        _superUsers = new HashSet<string>(superUsers, StringComparer.Ordinal);
        _allowIfNoAcl = allowEveryoneIfNoAclFound;
    }

    /// <summary>
    /// The authorizer <paramref name="properties"/> ask for: this one when <c>authorizer.class.name</c>
    /// names Kafka's StandardAuthorizer or AclAuthorizer, allow-all when it is empty or absent.
    /// </summary>
    /// <exception cref="ArgumentException">Another class is named (Kafka refuses to start too).</exception>
    public static IAuthorizer FromProperties(IReadOnlyDictionary<string, string> properties, Func<AclTable> acls)
    {
        var name = properties.GetValueOrDefault("authorizer.class.name")?.Trim();
        if (string.IsNullOrEmpty(name))
        {
            return AllowAllAuthorizer.Instance;
        }

        if (name is not (StandardAuthorizerClass or LegacyAuthorizerClass))
        {
            throw new ArgumentException($"authorizer.class.name={name}: Moldau provides {StandardAuthorizerClass} (and {LegacyAuthorizerClass}, treated alike) only");
        }

        var superUsers = (properties.GetValueOrDefault("super.users") ?? string.Empty)
            .Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var allow = string.Equals(properties.GetValueOrDefault("allow.everyone.if.no.acl.found")?.Trim(), "true", StringComparison.OrdinalIgnoreCase);
        return new AclAuthorizer(acls, superUsers, allow);
    }

    /// <inheritdoc/>
    public bool Authorize(RequestContext context, AclOperation operation, ResourceType type, string name) =>
        Authorize(context.Session.Principal, context.Session.PeerHost, operation, type, name);

    /// <inheritdoc/>
    public bool AuthorizeAny(RequestContext context, AclOperation operation, ResourceType type) =>
        AuthorizeAny(context.Session.Principal, context.Session.PeerHost, operation, type);

    /// <summary>Whether <paramref name="principal"/> from <paramref name="host"/> may perform <paramref name="operation"/> on the resource.</summary>
    public bool Authorize(string principal, string host, AclOperation operation, ResourceType type, string name)
    {
        if (_superUsers.Contains(principal))
        {
            return true;
        }

        // Only the broker reads and writes its internal topics (__consumer_offsets,
        // __transaction_state): no ACL opens them to a client, only super.users.
        if (type == ResourceType.Topic && operation is AclOperation.Read or AclOperation.Write && InternalTopics.IsInternal(name))
        {
            return false;
        }

        var found = false;
        var allowed = false;
        foreach (var group in _acls().For(type, name))
        {
            found = true;
            foreach (var acl in group)
            {
                if ((acl.Principal != principal && acl.Principal != WildcardPrincipal) || (acl.Host != WildcardHost && acl.Host != host))
                {
                    continue;
                }

                if (acl.Permission == AclPermissionType.Deny)
                {
                    if (acl.Operation == operation || acl.Operation == AclOperation.All)
                    {
                        return false;
                    }
                }
                else if (!allowed && Grants(acl.Operation, operation))
                {
                    allowed = true;
                }
            }
        }

        return allowed || (!found && _allowIfNoAcl);
    }

    /// <summary>
    /// Whether <paramref name="principal"/> may perform <paramref name="operation"/> on at least one
    /// resource of <paramref name="type"/> (Kafka's <c>Authorizer.authorizeByResourceType</c>, for
    /// KIP-679's "Write on any topic"): a super user may; a DENY on the literal <c>*</c> refuses;
    /// else an ALLOW for exactly that operation (or ALL) whose pattern no DENY covers grants.
    /// </summary>
    public bool AuthorizeAny(string principal, string host, AclOperation operation, ResourceType type)
    {
        // As Kafka: a check of a made-up name first lets super users (and, with no ACL on it,
        // allow.everyone.if.no.acl.found) through.
        if (Authorize(principal, host, operation, type, "hardcode"))
        {
            return true;
        }

        var denyPrefixes = new List<string>();
        var denyLiterals = new HashSet<string>(StringComparer.Ordinal);
        var allows = new List<AclBinding>();
        foreach (var acl in _acls().ById.Values)
        {
            if (acl.ResourceType != type
                || (acl.Principal != principal && acl.Principal != WildcardPrincipal)
                || (acl.Host != WildcardHost && acl.Host != host)
                || (acl.Operation != operation && acl.Operation != AclOperation.All))
            {
                continue;
            }

            if (acl.Permission == AclPermissionType.Deny)
            {
                if (acl.PatternType == PatternType.Literal && acl.ResourceName == AclBinding.WildcardResource)
                {
                    return false;
                }

                (acl.PatternType == PatternType.Prefixed ? (ICollection<string>)denyPrefixes : denyLiterals).Add(acl.ResourceName);
            }
            else
            {
                allows.Add(acl);
            }
        }

        return allows.Any(a =>
            !denyPrefixes.Any(p => a.ResourceName.StartsWith(p, StringComparison.Ordinal))
            && !(a.PatternType == PatternType.Literal && denyLiterals.Contains(a.ResourceName)));
    }

    /// <summary>Whether an ALLOW of <paramref name="granted"/> grants <paramref name="wanted"/>.</summary>
    public static bool Grants(AclOperation granted, AclOperation wanted) =>
        granted == wanted
        || granted == AclOperation.All
        || (wanted == AclOperation.Describe && granted is AclOperation.Read or AclOperation.Write or AclOperation.Delete or AclOperation.Alter)
        || (wanted == AclOperation.DescribeConfigs && granted == AclOperation.AlterConfigs);
}
