namespace Moldau.Storage;

/// <summary>One segment of a partition log, as retention and DescribeLogDirs see it.</summary>
/// <param name="BaseOffset">The first offset the segment may hold.</param>
/// <param name="Size">Its bytes of batches.</param>
/// <param name="MaxTimestamp">The largest timestamp of its batches, or -1 when it has none.</param>
public readonly record struct SegmentInfo(long BaseOffset, long Size, long MaxTimestamp);
