namespace Moldau.Storage;

/// <summary>Settings of one partition log.</summary>
public sealed class PartitionLogOptions
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
}
