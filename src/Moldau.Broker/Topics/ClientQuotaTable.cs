using System.Collections.Frozen;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>One part of a quota entity: absent, the default (a null name), or a name.</summary>
/// <param name="Specified">Whether the entity has this part at all.</param>
/// <param name="Name">The name, or null for the default.</param>
internal readonly record struct QuotaEntityPart(bool Specified, string? Name)
{
    /// <summary>The part is not in the entity.</summary>
    public static readonly QuotaEntityPart Absent = default;

    /// <summary>The default entity of this type (<c>&lt;default&gt;</c> in Kafka's paths).</summary>
    public static readonly QuotaEntityPart Default = new(true, null);

    /// <summary>The named entity.</summary>
    public static QuotaEntityPart Named(string name) => new(true, name);
}

/// <summary>
/// A client quota entity (Kafka's <c>ClientQuotaEntity</c>): a user, a client id, both, or an IP,
/// each part named or the default. Equal entities are equal keys.
/// </summary>
/// <param name="User">The user part (the principal's name, without "User:").</param>
/// <param name="ClientId">The client-id part.</param>
/// <param name="Ip">The ip part (never combined with the others).</param>
internal readonly record struct QuotaEntity(QuotaEntityPart User, QuotaEntityPart ClientId, QuotaEntityPart Ip)
{
    /// <summary>Entity type of a user.</summary>
    public const string UserType = "user";

    /// <summary>Entity type of a client id.</summary>
    public const string ClientIdType = "client-id";

    /// <summary>Entity type of an IP address.</summary>
    public const string IpType = "ip";

    /// <summary>The parts this entity has, as (type, name) pairs in Kafka's order.</summary>
    public IEnumerable<(string Type, string? Name)> Parts()
    {
        if (User.Specified)
        {
            yield return (UserType, User.Name);
        }

        if (ClientId.Specified)
        {
            yield return (ClientIdType, ClientId.Name);
        }

        if (Ip.Specified)
        {
            yield return (IpType, Ip.Name);
        }
    }

    /// <summary>How many parts the entity has.</summary>
    public int Count => (User.Specified ? 1 : 0) + (ClientId.Specified ? 1 : 0) + (Ip.Specified ? 1 : 0);

    /// <summary>The part of <paramref name="type"/>.</summary>
    public QuotaEntityPart Part(string type) => type switch
    {
        UserType => User,
        ClientIdType => ClientId,
        IpType => Ip,
        _ => QuotaEntityPart.Absent,
    };

    /// <summary>The entity of a ClientQuotaRecord, or null when it names an unknown type or one twice.</summary>
    public static QuotaEntity? Of(IEnumerable<(string Type, string? Name)> parts)
    {
        QuotaEntityPart user = default, client = default, ip = default;
        foreach (var (type, name) in parts)
        {
            ref var part = ref user;
            switch (type)
            {
                case UserType:
                    part = ref user;
                    break;
                case ClientIdType:
                    part = ref client;
                    break;
                case IpType:
                    part = ref ip;
                    break;
                default:
                    return null;
            }

            if (part.Specified)
            {
                return null;
            }

            part = new QuotaEntityPart(true, name);
        }

        return new QuotaEntity(user, client, ip);
    }

    /// <inheritdoc/>
    public override string ToString() => string.Join(",", Parts().Select(p => $"{p.Type}={p.Name ?? "<default>"}"));
}

/// <summary>
/// The client quotas the metadata log holds (ClientQuotaRecords): per entity, quota key to value.
/// Immutable, part of <see cref="MetadataImage"/>; <see cref="Builder"/> replays records into the
/// next one. <see cref="Resolve"/> finds the quota that applies to a connection with Kafka's
/// precedence (<c>DefaultQuotaCallback</c>).
/// </summary>
internal sealed class ClientQuotaTable
{
    /// <summary>producer_byte_rate: bytes per second a producer may send.</summary>
    public const string ProducerByteRate = "producer_byte_rate";

    /// <summary>consumer_byte_rate: bytes per second a consumer may fetch.</summary>
    public const string ConsumerByteRate = "consumer_byte_rate";

    /// <summary>request_percentage: percent of one request thread's time per quota window.</summary>
    public const string RequestPercentage = "request_percentage";

    /// <summary>controller_mutation_rate: partitions created or deleted per second.</summary>
    public const string ControllerMutationRate = "controller_mutation_rate";

    /// <summary>connection_creation_rate: connections per second from an IP (stored, not enforced).</summary>
    public const string ConnectionCreationRate = "connection_creation_rate";

    /// <summary>The table of an empty log.</summary>
    public static readonly ClientQuotaTable Empty = new(FrozenDictionary<QuotaEntity, FrozenDictionary<string, double>>.Empty);

    private readonly FrozenDictionary<QuotaEntity, FrozenDictionary<string, double>> _entities;

    private ClientQuotaTable(FrozenDictionary<QuotaEntity, FrozenDictionary<string, double>> entities)
    {
        _entities = entities;
        foreach (var values in entities.Values)
        {
            HasProducerQuota |= values.ContainsKey(ProducerByteRate);
            HasConsumerQuota |= values.ContainsKey(ConsumerByteRate);
            HasRequestQuota |= values.ContainsKey(RequestPercentage);
            HasMutationQuota |= values.ContainsKey(ControllerMutationRate);
        }

        HasClientQuotas = HasProducerQuota || HasConsumerQuota || HasRequestQuota || HasMutationQuota;
    }

    /// <summary>Every entity with at least one quota, and its quotas.</summary>
    public IReadOnlyDictionary<QuotaEntity, FrozenDictionary<string, double>> Entities => _entities;

    /// <summary>Whether any user or client-id quota is set: false keeps enforcement off the request path.</summary>
    public bool HasClientQuotas { get; }

    /// <summary>Whether some entity has a producer_byte_rate.</summary>
    public bool HasProducerQuota { get; }

    /// <summary>Whether some entity has a consumer_byte_rate.</summary>
    public bool HasConsumerQuota { get; }

    /// <summary>Whether some entity has a request_percentage.</summary>
    public bool HasRequestQuota { get; }

    /// <summary>Whether some entity has a controller_mutation_rate.</summary>
    public bool HasMutationQuota { get; }

    /// <summary>
    /// The quota of <paramref name="key"/> for <paramref name="user"/> and <paramref name="clientId"/>,
    /// and the metric tags its usage is measured under, or null when none applies. The levels,
    /// first match wins (Kafka's <c>DefaultQuotaCallback</c>): user and client id, user and default
    /// client id, user, default user and client id, default user and default client id, default
    /// user, client id, default client id. Usage is shared by everything with the same tags: a
    /// user-level quota by all of the user's clients ("user", ""), a client-level one by that
    /// client id across users ("", client id), a user-and-client one per pair.
    /// </summary>
    public (double Bound, string UserTag, string ClientTag)? Resolve(string key, string user, string clientId)
    {
        var u = QuotaEntityPart.Named(user);
        var c = QuotaEntityPart.Named(clientId);
        var none = QuotaEntityPart.Absent;
        var any = QuotaEntityPart.Default;
        return Find(key, new(u, c, none)) is { } v1 ? (v1, user, clientId)
            : Find(key, new(u, any, none)) is { } v2 ? (v2, user, clientId)
            : Find(key, new(u, none, none)) is { } v3 ? (v3, user, "")
            : Find(key, new(any, c, none)) is { } v4 ? (v4, user, clientId)
            : Find(key, new(any, any, none)) is { } v5 ? (v5, user, clientId)
            : Find(key, new(any, none, none)) is { } v6 ? (v6, user, "")
            : Find(key, new(none, c, none)) is { } v7 ? ((double, string, string)?)(v7, "", clientId)
            : Find(key, new(none, any, none)) is { } v8 ? (v8, "", clientId)
            : null;
    }

    private double? Find(string key, QuotaEntity entity) =>
        _entities.TryGetValue(entity, out var values) && values.TryGetValue(key, out var value) ? value : null;

    /// <summary>Replays ClientQuotaRecords over a table into the next one.</summary>
    internal sealed class Builder(ClientQuotaTable table)
    {
        private readonly Dictionary<QuotaEntity, Dictionary<string, double>> _changed = [];

        /// <summary>Applies one record; one naming an unknown entity type or a type twice is skipped (false).</summary>
        public bool Replay(ClientQuotaRecord record)
        {
            if (QuotaEntity.Of(record.Entity.Select(e => (e.EntityType, e.EntityName))) is not { } entity || entity.Count == 0)
            {
                return false;
            }

            if (!_changed.TryGetValue(entity, out var values))
            {
                values = table._entities.TryGetValue(entity, out var old) ? new Dictionary<string, double>(old, StringComparer.Ordinal) : new(StringComparer.Ordinal);
                _changed[entity] = values;
            }

            if (record.Remove)
            {
                values.Remove(record.Key);
            }
            else
            {
                values[record.Key] = record.Value;
            }

            return true;
        }

        /// <summary>The table with the replayed changes; entities left without quotas are dropped.</summary>
        public ClientQuotaTable Build()
        {
            if (_changed.Count == 0)
            {
                return table;
            }

            var entities = new Dictionary<QuotaEntity, FrozenDictionary<string, double>>(table._entities);
            foreach (var (entity, values) in _changed)
            {
                if (values.Count == 0)
                {
                    entities.Remove(entity);
                }
                else
                {
                    entities[entity] = values.ToFrozenDictionary(StringComparer.Ordinal);
                }
            }

            return new ClientQuotaTable(entities.ToFrozenDictionary());
        }
    }
}
