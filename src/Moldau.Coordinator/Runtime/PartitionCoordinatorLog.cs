using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Coordinator.Runtime;

/// <summary>
/// A coordinator shard's log over a local <see cref="PartitionLog"/>. Coordinator records are
/// always fsynced before they count, whatever the topic's flush settings say (the old group
/// coordinator did so too): when the log does not sync before acknowledging, the wait runs an
/// fsync itself, on the thread pool.
/// </summary>
public sealed class PartitionCoordinatorLog(PartitionLog log) : ICoordinatorLog
{
    /// <inheritdoc/>
    public string Name => log.Directory;

    /// <inheritdoc/>
    public long StartOffset => log.LogStartOffset;

    /// <inheritdoc/>
    public long EndOffset => log.LogEndOffset;

    /// <inheritdoc/>
    public long Append(byte[] batch)
    {
        log.Append(batch, 0, durabilityWanted: true);
        return new RecordBatch(batch).LastOffset + 1;
    }

    /// <inheritdoc/>
    public async Task WaitDurableAsync(long endOffset)
    {
        await log.WaitDurableAsync(endOffset).ConfigureAwait(false);
        if (log.RecoveryPoint < endOffset)
        {
            await Task.Run(log.Flush).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> Read(long offset, int maxBytes) => log.Read(offset, maxBytes, minOneBatch: true, log.LogEndOffset);
}
