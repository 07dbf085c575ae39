using System.Collections.Immutable;
using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>
/// One ACL as the metadata log holds it (an AccessControlEntryRecord): a resource pattern, a
/// principal, a host, an operation and ALLOW or DENY. The id names it for removal.
/// </summary>
internal sealed record AclBinding(
    Uuid Id,
    ResourceType ResourceType,
    string ResourceName,
    PatternType PatternType,
    string Principal,
    string Host,
    AclOperation Operation,
    AclPermissionType Permission)
{
    /// <summary>The literal resource name that matches every name of its type.</summary>
    public const string WildcardResource = "*";

    /// <summary>The binding a record holds, or null when it is not a valid ACL (see <see cref="Invalid"/>).</summary>
    public static AclBinding? From(AccessControlEntryRecord r)
    {
        var binding = new AclBinding(
            r.Id,
            (ResourceType)(byte)r.ResourceType,
            r.ResourceName,
            (PatternType)(byte)r.PatternType,
            r.Principal,
            r.Host,
            (AclOperation)(byte)r.Operation,
            (AclPermissionType)(byte)r.PermissionType);
        return Invalid(binding) is null ? binding : null;
    }

    /// <summary>
    /// Why <paramref name="b"/> can't be stored (Kafka's <c>AclControlManager.validateNewAcl</c>
    /// and the broker's checks before it), or null when it can.
    /// </summary>
    public static string? Invalid(AclBinding b)
    {
        if (b.ResourceType is not (ResourceType.Topic or ResourceType.Group or ResourceType.Cluster or ResourceType.TransactionalId or ResourceType.DelegationToken or ResourceType.User))
        {
            return $"Invalid resourceType {(byte)b.ResourceType}";
        }

        if (b.PatternType is not (PatternType.Literal or PatternType.Prefixed))
        {
            return $"Invalid patternType {(byte)b.PatternType}";
        }

        if (b.Operation is AclOperation.Unknown or AclOperation.Any || !Enum.IsDefined(b.Operation))
        {
            return $"Invalid operation {(byte)b.Operation}";
        }

        if (b.Permission is not (AclPermissionType.Allow or AclPermissionType.Deny))
        {
            return $"Invalid permissionType {(byte)b.Permission}";
        }

        if (string.IsNullOrEmpty(b.ResourceName))
        {
            return "Resource name should not be empty";
        }

        if (b.ResourceType == ResourceType.Cluster && b.ResourceName != AuthorizedOperations.ClusterName)
        {
            return $"The only valid name for the CLUSTER resource is {AuthorizedOperations.ClusterName}";
        }

        var colon = b.Principal.IndexOf(':', StringComparison.Ordinal);
        if (colon <= 0 || colon == b.Principal.Length - 1)
        {
            return $"Could not parse principal from `{b.Principal}` (no colon is present separating the principal type from the principal name)";
        }

        return b.Host.Length == 0 ? "Invalid empty host" : null;
    }

    /// <summary>The record that stores this binding.</summary>
    public AccessControlEntryRecord ToRecord() => new()
    {
        Id = Id,
        ResourceType = (sbyte)ResourceType,
        ResourceName = ResourceName,
        PatternType = (sbyte)PatternType,
        Principal = Principal,
        Host = Host,
        Operation = (sbyte)Operation,
        PermissionType = (sbyte)Permission,
    };

    /// <summary>Whether <paramref name="other"/> is the same ACL (all but the id).</summary>
    public bool SameAs(AclBinding other) =>
        ResourceType == other.ResourceType && PatternType == other.PatternType && Operation == other.Operation && Permission == other.Permission
        && ResourceName == other.ResourceName && Principal == other.Principal && Host == other.Host;
}

/// <summary>
/// A filter over ACLs, as DescribeAcls and DeleteAcls send it (Kafka's <c>AclBindingFilter</c>):
/// null strings and the ANY codes match everything; pattern type MATCH matches every pattern that
/// would apply to the name (the literal name, the literal <c>*</c>, every prefix of it).
/// </summary>
internal sealed record AclFilter(
    ResourceType ResourceType,
    string? ResourceName,
    PatternType PatternType,
    string? Principal,
    string? Host,
    AclOperation Operation,
    AclPermissionType Permission)
{
    /// <summary>Why the filter can't be used (a code this broker does not know), or null.</summary>
    public string? Invalid() =>
        ResourceType is ResourceType.Unknown || !Enum.IsDefined(ResourceType) ? $"Invalid resourceType {(byte)ResourceType}"
        : PatternType is PatternType.Unknown || !Enum.IsDefined(PatternType) ? $"Invalid patternType {(byte)PatternType}"
        : Operation is AclOperation.Unknown || !Enum.IsDefined(Operation) ? $"Invalid operation {(byte)Operation}"
        : Permission is AclPermissionType.Unknown || !Enum.IsDefined(Permission) ? $"Invalid permissionType {(byte)Permission}"
        : null;

    /// <summary>Whether <paramref name="b"/> passes the filter.</summary>
    public bool Matches(AclBinding b)
    {
        if (ResourceType != ResourceType.Any && ResourceType != b.ResourceType)
        {
            return false;
        }

        if (PatternType is not (PatternType.Any or PatternType.Match) && PatternType != b.PatternType)
        {
            return false;
        }

        if (ResourceName is not null)
        {
            var nameMatches = PatternType is PatternType.Any || PatternType == b.PatternType
                ? ResourceName == b.ResourceName
                : b.PatternType == PatternType.Literal
                    ? ResourceName == b.ResourceName || b.ResourceName == AclBinding.WildcardResource
                    : ResourceName.StartsWith(b.ResourceName, StringComparison.Ordinal);
            if (!nameMatches)
            {
                return false;
            }
        }

        return (Principal is null || Principal == b.Principal)
            && (Host is null || Host == b.Host)
            && (Operation == AclOperation.Any || Operation == b.Operation)
            && (Permission == AclPermissionType.Any || Permission == b.Permission);
    }
}

/// <summary>
/// Every ACL of the metadata log, in an immutable table indexed for the authorizer: per resource
/// type, literal patterns by name and prefixed patterns by prefix, with the distinct prefix
/// lengths, so a check looks up the name, <c>*</c> and one slice of the name per prefix length in
/// use, never scanning the table. A change makes a new table (<see cref="With"/>).
/// </summary>
internal sealed class AclTable
{
    private const int Types = (int)ResourceType.User + 1;

    /// <summary>No ACLs.</summary>
    public static readonly AclTable Empty = new(ImmutableDictionary<Uuid, AclBinding>.Empty);

    private readonly Index[] _literal = new Index[Types];
    private readonly Index[] _prefixed = new Index[Types];
    private readonly int[][] _prefixLengths = new int[Types][];

    private AclTable(ImmutableDictionary<Uuid, AclBinding> byId)
    {
        ById = byId;
        var literal = new Dictionary<string, List<AclBinding>>[Types];
        var prefixed = new Dictionary<string, List<AclBinding>>[Types];
        for (var t = 0; t < Types; t++)
        {
            literal[t] = new(StringComparer.Ordinal);
            prefixed[t] = new(StringComparer.Ordinal);
        }

        foreach (var acl in byId.Values)
        {
            var map = (acl.PatternType == PatternType.Prefixed ? prefixed : literal)[(int)acl.ResourceType];
            if (!map.TryGetValue(acl.ResourceName, out var list))
            {
                map[acl.ResourceName] = list = [];
            }

            list.Add(acl);
        }

        for (var t = 0; t < Types; t++)
        {
            _literal[t] = new Index(literal[t]);
            _prefixed[t] = new Index(prefixed[t]);
            _prefixLengths[t] = [.. prefixed[t].Keys.Select(k => k.Length).Distinct().Order()];
        }
    }

    /// <summary>The ACLs by id.</summary>
    public ImmutableDictionary<Uuid, AclBinding> ById { get; }

    /// <summary>How many ACLs there are.</summary>
    public int Count => ById.Count;

    /// <summary>This table with <paramref name="added"/> added and the ACLs with the <paramref name="removed"/> ids removed.</summary>
    public AclTable With(IEnumerable<AclBinding> added, IEnumerable<Uuid> removed)
    {
        var builder = ById.ToBuilder();
        foreach (var id in removed)
        {
            builder.Remove(id);
        }

        foreach (var acl in added)
        {
            builder[acl.Id] = acl;
        }

        return new AclTable(builder.ToImmutable());
    }

    /// <summary>The stored ACL equal to <paramref name="acl"/> but for its id, or null.</summary>
    public AclBinding? FindSame(AclBinding acl)
    {
        if ((int)acl.ResourceType >= Types)
        {
            return null;
        }

        var index = (acl.PatternType == PatternType.Prefixed ? _prefixed : _literal)[(int)acl.ResourceType];
        foreach (var stored in index.Find(acl.ResourceName))
        {
            if (stored.SameAs(acl))
            {
                return stored;
            }
        }

        return null;
    }

    /// <summary>The ACLs passing <paramref name="filter"/> (a scan: for DescribeAcls and DeleteAcls, not for checks).</summary>
    public IEnumerable<AclBinding> Matching(AclFilter filter) => ById.Values.Where(filter.Matches);

    /// <summary>
    /// The groups of ACLs whose pattern applies to the resource: its literal name, the literal
    /// <c>*</c>, and every prefixed pattern the name starts with.
    /// </summary>
    public Candidates For(ResourceType type, string name) => new(this, (int)type < Types ? (int)type : -1, name);

    /// <summary>The groups of ACLs a resource's patterns select; enumerate with foreach, nothing allocated.</summary>
    public ref struct Candidates(AclTable table, int type, string name)
    {
        // Stage 0: the literal name; 1: the literal "*"; 2 and on: the prefix lengths in use.
        private int _stage = -1;

        /// <summary>The current group.</summary>
        public AclBinding[] Current { get; private set; } = [];

        /// <summary>Itself, for foreach.</summary>
        public readonly Candidates GetEnumerator() => this;

        /// <summary>Moves to the next non-empty group.</summary>
        public bool MoveNext()
        {
            if (type < 0)
            {
                return false;
            }

            var lengths = table._prefixLengths[type];
            while (true)
            {
                _stage++;
                AclBinding[] found;
                if (_stage == 0)
                {
                    found = table._literal[type].Find(name);
                }
                else if (_stage == 1)
                {
                    found = name == AclBinding.WildcardResource ? [] : table._literal[type].Find(AclBinding.WildcardResource);
                }
                else if (_stage - 2 < lengths.Length && lengths[_stage - 2] <= name.Length)
                {
                    found = table._prefixed[type].Find(name.AsSpan(0, lengths[_stage - 2]));
                }
                else
                {
                    return false;
                }

                if (found.Length > 0)
                {
                    Current = found;
                    return true;
                }
            }
        }
    }

    /// <summary>ACLs by pattern name, looked up by string or by a slice of one.</summary>
    private sealed class Index
    {
        private readonly Dictionary<string, AclBinding[]> _map;
        private readonly Dictionary<string, AclBinding[]>.AlternateLookup<ReadOnlySpan<char>> _spans;

        public Index(Dictionary<string, List<AclBinding>> source)
        {
            _map = source.ToDictionary(e => e.Key, e => e.Value.ToArray(), StringComparer.Ordinal);
            _spans = _map.GetAlternateLookup<ReadOnlySpan<char>>();
        }

        public AclBinding[] Find(string name) => _map.TryGetValue(name, out var acls) ? acls : [];

        public AclBinding[] Find(ReadOnlySpan<char> name) => _spans.TryGetValue(name, out var acls) ? acls : [];
    }
}

/// <summary>The ACLs a <see cref="MetadataDelta"/> adds and removes, applied to the image's table at the end.</summary>
internal sealed class AclChanges
{
    // By id: the ACL added, or null for one removed.
    private readonly Dictionary<Uuid, AclBinding?> _changes = [];

    /// <summary>An AccessControlEntryRecord: the ACL is stored (a second record with its id replaces it).</summary>
    public void Replay(AclBinding acl) => _changes[acl.Id] = acl;

    /// <summary>A RemoveAccessControlEntryRecord.</summary>
    public void Remove(Uuid id) => _changes[id] = null;

    /// <summary>The table after these changes.</summary>
    public AclTable Apply(AclTable before) =>
        _changes.Count == 0 ? before : before.With(_changes.Values.OfType<AclBinding>(), _changes.Keys);
}
