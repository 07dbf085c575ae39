namespace Moldau.Storage;

/// <summary>An idempotent producer a partition knows (DescribeProducers).</summary>
/// <param name="ProducerId">The producer id.</param>
/// <param name="Epoch">Its current epoch.</param>
/// <param name="LastSequence">The last sequence it wrote, or -1.</param>
/// <param name="LastTimestamp">The max timestamp of its last batch, or -1.</param>
public readonly record struct ActiveProducer(long ProducerId, short Epoch, int LastSequence, long LastTimestamp);
