namespace Moldau.Storage;

/// <summary>
/// The outcome of an append and the offsets the batch has (or had, for a duplicate): what a
/// Produce response reports for the partition.
/// </summary>
/// <param name="Status">What happened.</param>
/// <param name="BaseOffset">The batch's first offset, or -1 when refused.</param>
public readonly record struct AppendResult(AppendStatus Status, long BaseOffset)
{
    /// <summary>The batch's last offset, or -1 when refused.</summary>
    public long LastOffset { get; init; } = -1;

    /// <summary>The batch's LogAppendTime timestamp when it carries one, else -1 (CreateTime, a duplicate, a refusal).</summary>
    public long LogAppendTime { get; init; } = -1;

    /// <summary>The log start offset once the append is done, or -1 when refused.</summary>
    public long LogStartOffset { get; init; } = -1;
}
