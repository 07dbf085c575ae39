using System.Collections.Frozen;
using System.Collections.Immutable;
using Moldau.Protocol;

namespace Moldau.Broker.Topics;

/// <summary>
/// Everything the metadata log says, at one point of it (Kafka's <c>MetadataImage</c>): topics
/// by name and by id with their partitions and configs, the broker's dynamic configs, and where
/// the next producer-id block starts. An image never changes: a <see cref="MetadataDelta"/>
/// built from records makes the next one, and <see cref="TopicRegistry"/> publishes it by
/// swapping one reference, so readers take <see cref="TopicRegistry.Image"/> once and see one
/// consistent state without a lock.
/// </summary>
internal sealed class MetadataImage
{
    /// <summary>The image of an empty metadata log.</summary>
    public static readonly MetadataImage Empty = new(
        ImmutableDictionary.Create<string, TopicInfo>(StringComparer.Ordinal),
        ImmutableDictionary<Uuid, TopicInfo>.Empty,
        FrozenDictionary<string, string>.Empty,
        nextProducerId: 0);

    /// <summary>An image of the given parts.</summary>
    public MetadataImage(
        ImmutableDictionary<string, TopicInfo> topicsByName,
        ImmutableDictionary<Uuid, TopicInfo> topicsById,
        IReadOnlyDictionary<string, string> brokerConfigs,
        long nextProducerId)
    {
        TopicsByName = topicsByName;
        TopicsById = topicsById;
        BrokerConfigs = brokerConfigs;
        NextProducerId = nextProducerId;
    }

    /// <summary>Topics by name.</summary>
    public ImmutableDictionary<string, TopicInfo> TopicsByName { get; }

    /// <summary>Topics by id (the same objects as <see cref="TopicsByName"/>).</summary>
    public ImmutableDictionary<Uuid, TopicInfo> TopicsById { get; }

    /// <summary>Dynamic broker configs from ConfigRecords (key to value).</summary>
    public IReadOnlyDictionary<string, string> BrokerConfigs { get; }

    /// <summary>The first producer id of the next block to hand out (ProducerIdsRecord's NextProducerId).</summary>
    public long NextProducerId { get; }

    /// <summary>Client quotas from ClientQuotaRecords.</summary>
    public ClientQuotaTable ClientQuotas { get; init; } = ClientQuotaTable.Empty;

    /// <summary>The ACLs (AccessControlEntryRecords not removed since).</summary>
    public AclTable Acls { get; init; } = AclTable.Empty;

    /// <summary>SCRAM credentials from UserScramCredentialRecords.</summary>
    public ScramCredentialTable ScramCredentials { get; init; } = ScramCredentialTable.Empty;

    /// <summary>The topic named <paramref name="name"/>, or null.</summary>
    public TopicInfo? Find(string? name) => name is not null && TopicsByName.TryGetValue(name, out var t) ? t : null;

    /// <summary>The topic with <paramref name="id"/>, or null.</summary>
    public TopicInfo? Find(Uuid id) => TopicsById.TryGetValue(id, out var t) ? t : null;
}
