using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// Settings of one partition log: the typed form of its topic's effective configs (Kafka's
/// <c>LogConfig</c>, resolved by the broker from the topic's overrides, the broker's keys and the
/// defaults) plus what opening the log needs. A config change gives an open log a new instance
/// through <see cref="PartitionLog.Reconfigure"/>; readers take <see cref="PartitionLog.Options"/>
/// once and use that instance throughout.
/// </summary>
public sealed record PartitionLogOptions
{
    /// <summary>segment.bytes / log.segment.bytes: roll to a new segment beyond this size.</summary>
    public long SegmentBytes { get; init; } = 1L << 30;

    /// <summary>
    /// Moldau's default durability: the high watermark only covers fsynced data, and acks=all
    /// waits for the fsync. False gives Kafka's own behaviour (flush.messages / flush.ms set
    /// explicitly): the page cache is trusted, the high watermark follows the log end at once.
    /// </summary>
    public bool SyncBeforeAck { get; init; } = true;

    /// <summary>
    /// Segment data written and read with O_DIRECT where the file system allows it (see
    /// <see cref="DirectIo"/>); <c>moldau.log.direct.io=false</c> goes through the page cache.
    /// </summary>
    public bool DirectIo { get; init; } = true;

    /// <summary>index.interval.bytes / log.index.interval.bytes: bytes between offset index entries.</summary>
    public int IndexIntervalBytes { get; init; } = 4096;

    /// <summary>file.delete.delay.ms: how long a segment retired by retention stays open (as <c>.deleted</c>) before it is removed.</summary>
    public TimeSpan FileDeleteDelay { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>segment.ms / log.roll.ms (log.roll.hours): roll to a new segment once the active one is this old.</summary>
    public TimeSpan SegmentAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>
    /// The log dir was closed cleanly (Kafka's <c>.kafka_cleanshutdown</c> marker was there at
    /// start): segments and their index files are trusted as they are and not read through; the
    /// producer state comes from the latest <c>.snapshot</c>.
    /// </summary>
    public bool CleanShutdown { get; init; }

    /// <summary>
    /// How long appends that nobody waits for yet (acks=1) may stay unsynced before an fsync
    /// covers them; an acks=all producer, or a reader at the high watermark, starts it at once.
    /// </summary>
    public TimeSpan FlushLinger { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>The offset the first segment of a log with no segment yet starts at (0, or a metadata snapshot's end).</summary>
    public long InitialOffset { get; init; }

    /// <summary>flush.messages / log.flush.interval.messages, when <see cref="SyncBeforeAck"/> is off: fsync once this many messages are unflushed.</summary>
    public long FlushMessages { get; init; } = long.MaxValue;

    /// <summary>flush.ms / log.flush.interval.ms, when <see cref="SyncBeforeAck"/> is off: fsync at most this long after an unflushed append.</summary>
    public TimeSpan? FlushInterval { get; init; }

    /// <summary>
    /// From <c>recovery-point-offset-checkpoint</c>: after an unclean stop, segments that end at or
    /// below it are loaded as they are, and only the later ones are read through.
    /// </summary>
    public long RecoveryPoint { get; init; }

    /// <summary>From <c>cleaner-offset-checkpoint</c>: the offset up to which a compacted log was cleaned.</summary>
    public long CleanedUpTo { get; init; }

    /// <summary>segment.jitter.ms: each segment rolls by age up to this much earlier (a random amount, below <see cref="SegmentAge"/>).</summary>
    public TimeSpan SegmentJitter { get; init; }

    /// <summary>segment.index.bytes / log.index.size.max.bytes: a segment rolls once its offset or time index holds this many bytes.</summary>
    public int MaxIndexBytes { get; init; } = 10 * 1024 * 1024;

    /// <summary>max.message.bytes / message.max.bytes: the largest batch appended (after re-compression).</summary>
    public int MaxMessageBytes { get; init; } = 1048588;

    /// <summary>compression.type: the codec batches are stored with; null ("producer") keeps the producer's.</summary>
    public CompressionType? Compression { get; init; }

    /// <summary>message.timestamp.type=LogAppendTime: the broker stamps each batch as it is appended.</summary>
    public bool LogAppendTime { get; init; }

    /// <summary>message.timestamp.before.max.ms (KIP-937): how far before the broker's clock a CreateTime record may lie.</summary>
    public long TimestampBeforeMaxMs { get; init; } = long.MaxValue;

    /// <summary>message.timestamp.after.max.ms (KIP-937): how far after the broker's clock a CreateTime record may lie.</summary>
    public long TimestampAfterMaxMs { get; init; } = long.MaxValue;

    /// <summary>cleanup.policy includes compact: records need keys, the cleaner compacts the log.</summary>
    public bool Compact { get; init; }

    /// <summary>cleanup.policy includes delete: retention drops old segments.</summary>
    public bool Delete { get; init; } = true;

    /// <summary>retention.ms: closed segments whose newest record is older go (-1: no time limit).</summary>
    public long RetentionMs { get; init; } = 604_800_000;

    /// <summary>retention.bytes: the oldest closed segments go while the log is larger (-1: no limit).</summary>
    public long RetentionBytes { get; init; } = -1;

    /// <summary>delete.retention.ms: how long the cleaner keeps a tombstone.</summary>
    public long DeleteRetentionMs { get; init; } = 86_400_000;

    /// <summary>min.cleanable.dirty.ratio: the dirty share above which the cleaner runs.</summary>
    public double MinCleanableDirtyRatio { get; init; } = 0.5;

    /// <summary>min.compaction.lag.ms: segments holding records younger than this are not compacted yet.</summary>
    public long MinCompactionLagMs { get; init; }

    /// <summary>max.compaction.lag.ms: a record stays uncompacted at most this long (the active segment rolls, the cleaner runs).</summary>
    public long MaxCompactionLagMs { get; init; } = long.MaxValue;

    /// <summary>min.insync.replicas: above 1, acks=all appends can't be met by one node (NOT_ENOUGH_REPLICAS).</summary>
    public int MinInSyncReplicas { get; init; } = 1;

    /// <summary>
    /// How long a segment may grow by age: segment.ms, or for a compacted log max.compaction.lag.ms
    /// when shorter (the cleaner never touches the active segment), as Kafka's <c>maxSegmentMs</c>.
    /// </summary>
    public TimeSpan MaxSegmentAge =>
        Compact && MaxCompactionLagMs < SegmentAge.TotalMilliseconds ? TimeSpan.FromMilliseconds(MaxCompactionLagMs) : SegmentAge;
}
