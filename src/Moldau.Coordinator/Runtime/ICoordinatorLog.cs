namespace Moldau.Coordinator.Runtime;

/// <summary>
/// The one partition a coordinator shard writes its records to and loads them from (a partition
/// of <c>__consumer_offsets</c> for the group coordinator). Narrow on purpose: the runtime appends
/// a batch, waits until it is durable, and reads whole batches back when the shard loads.
/// </summary>
public interface ICoordinatorLog
{
    /// <summary>Names the partition in log lines.</summary>
    string Name { get; }

    /// <summary>The first offset a load reads from.</summary>
    long StartOffset { get; }

    /// <summary>The offset the next append gets.</summary>
    long EndOffset { get; }

    /// <summary>
    /// Appends one uncompressed batch (its base offset is rewritten to the log end) and returns
    /// the offset after it, to wait on. Throws <see cref="IOException"/> when the write fails and
    /// <see cref="CoordinatorWriteRefusedException"/> when the log refuses the batch (the producer
    /// state of a transactional batch or marker); the log is then as it was.
    /// </summary>
    long Append(byte[] batch);

    /// <summary>
    /// As <see cref="Append(byte[])"/>; with <paramref name="durabilityWanted"/> false nobody waits
    /// for the batch, so the log may gather it into a later fsync instead of starting one now.
    /// </summary>
    long Append(byte[] batch, bool durabilityWanted) => Append(batch);

    /// <summary>Completes once everything below <paramref name="endOffset"/> is on disk; faults with <see cref="IOException"/> when it cannot be.</summary>
    Task WaitDurableAsync(long endOffset);

    /// <summary>Whole batches from the one holding <paramref name="offset"/>, up to <paramref name="maxBytes"/> (at least one batch).</summary>
    ReadOnlyMemory<byte> Read(long offset, int maxBytes);
}
