namespace Moldau.Storage;

/// <summary>Settings of one partition log.</summary>
public sealed class PartitionLogOptions
{
    /// <summary>segment.bytes / log.segment.bytes: roll to a new segment beyond this size.</summary>
    public long SegmentBytes { get; init; } = 1L << 30;

    /// <summary>index.interval.bytes / log.index.interval.bytes: bytes between offset index entries.</summary>
    public int IndexIntervalBytes { get; init; } = 4096;
}
