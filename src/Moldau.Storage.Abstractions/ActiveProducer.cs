namespace Moldau.Storage;

/// <summary>An idempotent or transactional producer a partition knows (DescribeProducers).</summary>
/// <param name="ProducerId">The producer id.</param>
/// <param name="Epoch">Its current epoch.</param>
/// <param name="LastSequence">The last sequence it wrote, or -1.</param>
/// <param name="LastTimestamp">The max timestamp of its last batch, or -1.</param>
public readonly record struct ActiveProducer(long ProducerId, short Epoch, int LastSequence, long LastTimestamp)
{
    /// <summary>The first offset of its transaction open in this partition, or -1 when none is open.</summary>
    public long CurrentTxnStartOffset { get; init; } = -1;

    /// <summary>The transaction coordinator epoch of its last marker in this partition, or -1.</summary>
    public int CoordinatorEpoch { get; init; } = -1;
}
