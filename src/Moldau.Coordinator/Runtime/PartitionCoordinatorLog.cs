using Moldau.Protocol;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Coordinator.Runtime;

/// <summary>
/// A coordinator shard's log over a local <see cref="IPartitionLog"/>. Coordinator records are
/// always fsynced before they count, whatever the topic's flush settings say (the group
/// coordinator always did so): when the log does not sync before acknowledging, the wait runs an
/// fsync itself, on the thread pool.
/// </summary>
public sealed class PartitionCoordinatorLog(IPartitionLog log) : ICoordinatorLog
{
    /// <inheritdoc/>
    public string Name => log.Directory;

    /// <inheritdoc/>
    public long StartOffset => log.LogStartOffset;

    /// <inheritdoc/>
    public long EndOffset => log.LogEndOffset;

    /// <inheritdoc/>
    public long Append(byte[] batch) => Append(batch, durabilityWanted: true);

    /// <inheritdoc/>
    public long Append(byte[] batch, bool durabilityWanted)
    {
        var result = log.Append(batch, 0, durabilityWanted);
        return result.Status switch
        {
            AppendStatus.Appended => new RecordBatch(batch).LastOffset + 1,
            // Coordinator batches carry no sequence; a repeat is not expected, but it is stored already.
            AppendStatus.Duplicate => result.LastOffset + 1,
            AppendStatus.InvalidProducerEpoch => throw new CoordinatorWriteRefusedException(ErrorCode.InvalidProducerEpoch, $"{log.Directory}: producer {new RecordBatch(batch).ProducerId} epoch {new RecordBatch(batch).ProducerEpoch} is fenced"),
            AppendStatus.TransactionCoordinatorFenced => throw new CoordinatorWriteRefusedException(ErrorCode.TransactionCoordinatorFenced, $"{log.Directory}: a marker of producer {new RecordBatch(batch).ProducerId} from an older transaction coordinator epoch"),
            AppendStatus.InvalidTxnState => throw new CoordinatorWriteRefusedException(ErrorCode.InvalidTxnState, $"{log.Directory}: producer {new RecordBatch(batch).ProducerId} has an open transaction here"),
            // Kafka's coordinators answer an oversized write with UNKNOWN_SERVER_ERROR.
            _ => throw new CoordinatorWriteRefusedException(ErrorCode.UnknownServerError, $"{log.Directory} refused the batch: {result.Status}"),
        };
    }

    /// <inheritdoc/>
    public async Task WaitDurableAsync(long endOffset)
    {
        // A wait that is already over just after the append means the log does not sync before
        // acknowledging (Kafka's flush settings are set; or, rarely, an fsync raced ahead): the
        // records are fsynced here then, on the thread pool, as the coordinator always had them.
        var wait = log.WaitDurableAsync(endOffset);
        if (wait.IsCompleted)
        {
            await wait.ConfigureAwait(false);
            await Task.Run(log.Flush).ConfigureAwait(false);
            return;
        }

        await wait.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public ReadOnlyMemory<byte> Read(long offset, int maxBytes) => log.Read(offset, maxBytes, minOneBatch: true, log.LogEndOffset);
}
