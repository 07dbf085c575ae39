using Moldau.Protocol;

namespace Moldau.Broker.Cluster;

/// <summary>
/// Where topics and producer ids live in cluster mode (PostgreSQL), as the
/// <see cref="Topics.TopicRegistry"/> asks it. Calls block on the database: they are made for
/// admin requests and producer-id blocks, not on the produce or fetch path.
/// </summary>
internal interface ITopicCatalog
{
    /// <summary>Creates the topic; its id, or null when a topic of that name exists.</summary>
    Uuid? CreateTopic(string name, int partitions);

    /// <summary>Every topic in the catalog, with its partition count.</summary>
    IReadOnlyList<(Uuid Id, string Name, int Partitions)> ListTopics();

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
