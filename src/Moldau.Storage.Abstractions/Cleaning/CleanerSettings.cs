namespace Moldau.Storage.Cleaning;

/// <summary>The settings of one cleaning pass over a compacted log.</summary>
public sealed record CleanerSettings
{
    /// <summary>
    /// delete.retention.ms / log.cleaner.delete.retention.ms: how long a tombstone stays once a
    /// pass first saw it as the latest record of its key (Kafka's delete horizon, KIP-534).
    /// </summary>
    public long DeleteRetentionMs { get; init; } = 86_400_000;

    /// <summary>
    /// min.cleanable.dirty.ratio / log.cleaner.min.cleanable.ratio: the share of the closed
    /// segments' bytes written since the last pass above which a log is cleaned again.
    /// </summary>
    public double MinCleanableDirtyRatio { get; init; } = 0.5;

    /// <summary>min.compaction.lag.ms: a segment holding a record younger than this is not cleaned yet (nor any after it).</summary>
    public long MinCompactionLagMs { get; init; }

    /// <summary>max.compaction.lag.ms: a dirty segment whose first batch is older than this is cleaned whatever the dirty ratio.</summary>
    public long MaxCompactionLagMs { get; init; } = long.MaxValue;
}

/// <summary>What a cleaning pass did.</summary>
/// <param name="SegmentsRewritten">Closed segments replaced by a cleaned copy.</param>
/// <param name="BytesBefore">Bytes of the closed segments read.</param>
/// <param name="BytesAfter">Bytes of those segments after the pass.</param>
/// <param name="RecordsRemoved">Records dropped (older values of a key, expired tombstones, records without a key).</param>
public readonly record struct CleaningResult(int SegmentsRewritten, long BytesBefore, long BytesAfter, long RecordsRemoved);
