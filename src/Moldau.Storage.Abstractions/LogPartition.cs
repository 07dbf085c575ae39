using Moldau.Protocol;

namespace Moldau.Storage;

/// <summary>A partition as a <see cref="ILogManager"/> knows it: the topic's name and id, and the partition's index.</summary>
/// <param name="Topic">The topic's name (legal: checked before a log is opened).</param>
/// <param name="TopicId">The topic's id.</param>
/// <param name="Partition">The partition's index.</param>
public readonly record struct LogPartition(string Topic, Uuid TopicId, int Partition)
{
    /// <summary>Kafka's name for the partition and its directory: <c>topic-partition</c>.</summary>
    public override string ToString() => $"{Topic}-{Partition}";
}
