using Moldau.Broker.Cluster;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>
/// Cluster mode (docs/cluster.md): topics live in PostgreSQL, and this broker's image mirrors them.
/// Changes made here go to the catalog first (<see cref="Catalog"/>); changes made by other brokers
/// arrive through <see cref="Mirror"/>. The records go through the same delta as in single-node
/// mode, into a metadata store that keeps nothing (<see cref="VolatileMetadataStore"/>).
/// </summary>
internal sealed partial class TopicRegistry
{
    /// <summary>The cluster catalog, in cluster mode; null in single-node mode. Set before <see cref="Load"/>.</summary>
    public ITopicCatalog? Catalog { get; init; }

    private static PartitionRecord ClusterPartition(ITopicCatalog catalog, Uuid topicId, int index)
    {
        var (leader, epoch) = catalog.LeaderOf(topicId, index);
        return new PartitionRecord
        {
            PartitionId = index,
            TopicId = topicId,
            Replicas = [leader],
            Isr = [leader],
            Leader = leader,
            LeaderEpoch = epoch,
            PartitionEpoch = epoch,
        };
    }

    /// <summary>
    /// Makes the image hold exactly <paramref name="topics"/> (the catalog's, internal topics
    /// aside), each partition led by the broker the catalog's hash names at the current epoch:
    /// topics other brokers created or deleted appear or go, every partition whose leader or
    /// epoch moved gets a PartitionRecord, and every topic config override that differs from the
    /// catalog's gets a ConfigRecord (set or removed). Returns how many records it applied.
    /// </summary>
    public int Mirror(IReadOnlyList<(Uuid Id, string Name, int Partitions, IReadOnlyDictionary<string, string> Configs)> topics)
    {
        if (Catalog is not { } catalog)
        {
            return 0;
        }

        lock (_changeLock)
        {
            var image = _image;
            var records = new List<IKafkaMessage>();
            var wanted = topics.ToDictionary(t => t.Id);
            foreach (var topic in image.TopicsById.Values)
            {
                if (!InternalTopics.IsInternal(topic.Name) && (!wanted.TryGetValue(topic.Id, out var w) || w.Partitions < topic.Partitions.Length))
                {
                    records.Add(new RemoveTopicRecord { TopicId = topic.Id });
                }
            }

            foreach (var (id, name, count, configs) in topics)
            {
                var existing = image.Find(id);
                if (existing is not null && existing.Partitions.Length > count)
                {
                    existing = null; // removed above, added again whole
                }

                if (existing is null)
                {
                    if (image.Find(name) is { } stale && stale.Id != id && !records.OfType<RemoveTopicRecord>().Any(r => r.TopicId == stale.Id))
                    {
                        records.Add(new RemoveTopicRecord { TopicId = stale.Id }); // deleted and created again elsewhere
                    }

                    records.Add(new TopicRecord { Name = name, TopicId = id });
                }

                var current = existing?.Configs ?? new Dictionary<string, string>();
                foreach (var (key, value) in configs)
                {
                    if (!current.TryGetValue(key, out var had) || had != value)
                    {
                        records.Add(new ConfigRecord { ResourceType = TopicResource, ResourceName = name, Name = key, Value = value });
                    }
                }

                foreach (var key in current.Keys)
                {
                    if (!configs.ContainsKey(key))
                    {
                        records.Add(new ConfigRecord { ResourceType = TopicResource, ResourceName = name, Name = key, Value = null });
                    }
                }

                for (var i = 0; i < count; i++)
                {
                    var (leader, epoch) = catalog.LeaderOf(id, i);
                    if (existing?.Partition(i) is { } p && p.Leader == leader && p.LeaderEpoch == epoch)
                    {
                        continue;
                    }

                    records.Add(ClusterPartition(catalog, id, i));
                }
            }

            if (records.Count > 0)
            {
                CommitAndPublish(records);
            }

            return records.Count;
        }
    }
}
