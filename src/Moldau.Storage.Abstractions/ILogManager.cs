namespace Moldau.Storage;

/// <summary>
/// Opens, creates and deletes partition logs, and keeps what a restart needs to find them as they
/// were (Kafka's <c>LogManager</c>). The broker calls it when a metadata image gains or loses a
/// partition; handlers never do. The local implementation keeps segments in log dirs; another
/// backend implements this and <see cref="IMetadataStore"/> without a handler changing.
/// </summary>
public interface ILogManager : IDisposable
{
    /// <summary>True when storage already holds a log for <paramref name="partition"/> (a directory in a log dir).</summary>
    bool Exists(LogPartition partition);

    /// <summary>
    /// Opens the log of <paramref name="partition"/>, creating it when it doesn't exist, with the
    /// topic's configs (<paramref name="topicConfigs"/>, key to value) over the broker's defaults.
    /// </summary>
    /// <exception cref="IOException">The storage refused (a full disk, a segment that can't be read).</exception>
    /// <exception cref="UnauthorizedAccessException">The storage refused access.</exception>
    IPartitionLog Open(LogPartition partition, IReadOnlyDictionary<string, string> topicConfigs);

    /// <summary>
    /// Creates the logs of new partitions (of one topic, with its <paramref name="topicConfigs"/>)
    /// before their metadata records are written: all of them, or none (what was created is
    /// removed again and the storage's refusal is thrown). The logs come back in the order of
    /// <paramref name="partitions"/>.
    /// </summary>
    /// <exception cref="IOException">The storage refused one of them (no descriptors, a full disk, a file in the way).</exception>
    /// <exception cref="UnauthorizedAccessException">The storage refused access.</exception>
    IReadOnlyList<IPartitionLog> Create(IReadOnlyList<LogPartition> partitions, IReadOnlyDictionary<string, string> topicConfigs);

    /// <summary>
    /// Closes <paramref name="log"/> and removes its data: the topic was deleted and that is
    /// durable. A null <paramref name="log"/>: the partition's log was never opened (start-up had
    /// not reached it, or it is offline); its data goes all the same.
    /// </summary>
    void Delete(LogPartition partition, IPartitionLog? log);

    /// <summary>Moves the log start offset of <paramref name="log"/> forward and records it durably.</summary>
    void AdvanceLogStart(IPartitionLog log, long offset);

    /// <summary>Records, per open log, the offset below which it is known to be on disk.</summary>
    void WriteRecoveryPoints();

    /// <summary>Records, per open log, how far compaction has cleaned it.</summary>
    void WriteCleanerOffsets();
}
