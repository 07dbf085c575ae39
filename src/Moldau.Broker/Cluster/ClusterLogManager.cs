using Moldau.Broker.Topics;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.Data;
using Moldau.Storage;

namespace Moldau.Broker.Cluster;

/// <summary>
/// The log manager of cluster mode: a topic's partitions are <see cref="ClusterPartitionLog"/>s
/// over the object store and PostgreSQL, except the internal topics (__consumer_offsets,
/// __transaction_state), which stay in this broker's own log dirs (<paramref name="local"/>): the
/// group coordinator keeps its state there until groups move to PostgreSQL (docs/cluster.md).
/// </summary>
internal sealed class ClusterLogManager(ILogManager local, ClusterData data, Func<IReadOnlyDictionary<string, string>, PartitionLogOptions> options) : ILogManager
{
    /// <inheritdoc/>
    public bool Exists(LogPartition partition) => InternalTopics.IsInternal(partition.Topic) ? local.Exists(partition) : true;

    /// <inheritdoc/>
    public IPartitionLog Open(LogPartition partition, IReadOnlyDictionary<string, string> topicConfigs) =>
        InternalTopics.IsInternal(partition.Topic)
            ? local.Open(partition, topicConfigs)
            : data.Open(new TopicIdPartition(partition.TopicId, partition.Partition), partition.ToString(), options(topicConfigs));

    /// <inheritdoc/>
    public IReadOnlyList<IPartitionLog> Create(IReadOnlyList<LogPartition> partitions, IReadOnlyDictionary<string, string> topicConfigs) =>
        partitions.Count > 0 && InternalTopics.IsInternal(partitions[0].Topic)
            ? local.Create(partitions, topicConfigs)
            : [.. partitions.Select(p => Open(p, topicConfigs))];

    /// <inheritdoc/>
    public void Delete(LogPartition partition, IPartitionLog? log)
    {
        if (InternalTopics.IsInternal(partition.Topic))
        {
            local.Delete(partition, log);
            return;
        }

        log?.Dispose(); // the data is the catalog's: the topic's rows went with the topic
    }

    /// <inheritdoc/>
    public void AdvanceLogStart(IPartitionLog log, long offset)
    {
        if (log is ClusterPartitionLog)
        {
            // DeleteRecords of a cluster partition goes to the catalog (ITopicCatalog.DeleteRecords),
            // retention to the shared clean-up job: nothing in the broker moves it here.
            throw new NotSupportedException("a cluster partition's log start moves in the catalog");
        }

        local.AdvanceLogStart(log, offset);
    }

    /// <inheritdoc/>
    public void WriteRecoveryPoints() => local.WriteRecoveryPoints();

    /// <inheritdoc/>
    public void WriteCleanerOffsets() => local.WriteCleanerOffsets();

    /// <inheritdoc/>
    public void Dispose() => local.Dispose();
}
