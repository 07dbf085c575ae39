using Moldau.Protocol;

namespace Moldau.Broker.Cluster;

/// <summary>
/// Where topics and producer ids live in cluster mode (PostgreSQL), as the
/// <see cref="Topics.TopicRegistry"/> asks it. Calls block on the database: they are made for
/// admin requests and producer-id blocks, not on the produce or fetch path.
/// </summary>
internal interface ITopicCatalog
{
    /// <summary>Creates the topic with its config overrides (one transaction); its id, or null when a topic of that name exists.</summary>
    Uuid? CreateTopic(string name, int partitions, IReadOnlyDictionary<string, string> configs);

    /// <summary>Every topic in the catalog, with its partition count and config overrides.</summary>
    IReadOnlyList<(Uuid Id, string Name, int Partitions, IReadOnlyDictionary<string, string> Configs)> ListTopics();

    /// <summary>Changes a topic's config overrides (a null value removes one); false when the topic is gone.</summary>
    bool SetTopicConfigs(Uuid topicId, IReadOnlyList<(string Name, string? Value)> changes);

    /// <summary>
    /// Kafka's DeleteRecords of one partition in the catalog (<paramref name="offset"/> -1: the high
    /// watermark): the error and the new low watermark, which this broker's log takes at once and
    /// the other brokers at their next poll. Null when <paramref name="log"/> is not the catalog's
    /// (an internal topic's local log).
    /// </summary>
    (ErrorCode Error, long LowWatermark)? DeleteRecords(Storage.IPartitionLog log, long offset);

    /// <summary>Deletes the topic; false when it did not exist.</summary>
    bool DeleteTopic(Uuid topicId);

    /// <summary>Grows the topic to <paramref name="count"/> partitions; false when it could not (not more than it has).</summary>
    bool AddPartitions(Uuid topicId, int count);

    /// <summary>The first id of a block of <paramref name="blockSize"/> producer ids no other broker gets.</summary>
    long AllocateProducerIds(int blockSize);

    /// <summary>The live broker that leads the partition (a stable hash over the live broker ids), and the leader epoch (the membership version).</summary>
    (int Leader, int Epoch) LeaderOf(Uuid topicId, int partition);
}

/// <summary>The live brokers of the cluster, as Metadata and FindCoordinator report them.</summary>
internal interface IClusterMembership
{
    /// <summary>The live brokers, by id.</summary>
    IReadOnlyList<ClusterBroker> Brokers { get; }

    /// <summary>The live broker that coordinates <paramref name="key"/> (a group id or transactional id), by a stable hash.</summary>
    int CoordinatorFor(string key);
}

/// <summary>A live broker: its id, rack and advertised endpoints.</summary>
internal sealed record ClusterBroker(int Id, string? Rack, IReadOnlyList<AdvertisedEndpoint> Endpoints)
{
    /// <summary>Its endpoint on <paramref name="listenerName"/> (else its first), or null.</summary>
    public AdvertisedEndpoint? EndpointFor(string listenerName) =>
        Endpoints.FirstOrDefault(e => string.Equals(e.ListenerName, listenerName, StringComparison.OrdinalIgnoreCase)) ?? Endpoints.FirstOrDefault();
}
