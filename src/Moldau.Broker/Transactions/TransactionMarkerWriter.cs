using Microsoft.Extensions.Logging;
using Moldau.Broker.Topics;
using Moldau.Coordinator.Transactions;
using Moldau.Protocol;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Transactions;

/// <summary>
/// Writes transaction markers into this broker's partitions: for the coordinator when a
/// transaction ends, and for WriteTxnMarkers (the admin client's abortTransaction). A data
/// partition gets a control batch (<see cref="ControlRecordBatch"/>) appended to its log, durable
/// before its error is None; a partition of __consumer_offsets is handed to the group coordinator
/// (<c>completeOffsets</c>), which writes the marker there and applies or drops the producer's
/// pending offsets. A partition that does not exist answers UNKNOWN_TOPIC_OR_PARTITION, which the
/// coordinator takes as deleted and skips, as Kafka skips a partition without a leader.
/// </summary>
/// <param name="state">The broker's topics and clock.</param>
/// <param name="completeOffsets">
/// (offsets partition, producer id, producer epoch, coordinator epoch, commit) → error: the group
/// coordinator's end of a transaction on one __consumer_offsets partition.
/// </param>
internal sealed class TransactionMarkerWriter(BrokerState state, Func<int, long, short, int, bool, Task<ErrorCode>> completeOffsets) : ITransactionMarkerWriter
{
    /// <inheritdoc/>
    public async Task<IReadOnlyList<(string Topic, int Partition, ErrorCode Error)>> WriteMarkersAsync(
        long producerId, short producerEpoch, int coordinatorEpoch, ControlRecordType result, IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        var errors = new ErrorCode[partitions.Count];
        var pending = new List<(int Index, Task<ErrorCode> Done)>();
        var now = state.Time.GetUtcNow().ToUnixTimeMilliseconds();
        for (var i = 0; i < partitions.Count; i++)
        {
            var (topic, index) = partitions[i];
            if (topic == InternalTopics.ConsumerOffsets)
            {
                pending.Add((i, CompleteOffsetsAsync(index, producerId, producerEpoch, coordinatorEpoch, result == ControlRecordType.Commit)));
                continue;
            }

            if (state.Topics.Find(topic)?.Partition(index) is not { } partition)
            {
                errors[i] = ErrorCode.UnknownTopicOrPartition;
                continue;
            }

            if (state.Topics.LogOf(ref partition) is not { } log)
            {
                errors[i] = partition.IsOffline ? ErrorCode.KafkaStorageError : ErrorCode.UnknownTopicOrPartition;
                continue;
            }

            var batch = ControlRecordBatch.Build(producerId, producerEpoch, coordinatorEpoch, result, now);
            try
            {
                AppendResult appended;
                lock (state.TransactionalAppends.LockFor(log))
                {
                    appended = log.Append(batch, partition.LeaderEpoch, durabilityWanted: true);
                }

                switch (appended.Status)
                {
                    case AppendStatus.Appended or AppendStatus.Duplicate:
                        pending.Add((i, DurableAsync(log, Math.Max(appended.LastOffset, appended.BaseOffset) + 1)));
                        break;
                    case AppendStatus.InvalidProducerEpoch:
                        errors[i] = ErrorCode.InvalidProducerEpoch;
                        break;
                    case AppendStatus.TransactionCoordinatorFenced:
                        // The partition has a marker from a newer coordinator epoch: this one is stale.
                        errors[i] = ErrorCode.TransactionCoordinatorFenced;
                        break;
                    default:
                        state.Log.LogError("{Result} marker for producer {ProducerId} refused by {Topic}-{Partition}: {Status}", result, producerId, topic, index, appended.Status);
                        errors[i] = ErrorCode.UnknownServerError;
                        break;
                }
            }
            catch (ObjectDisposedException)
            {
                errors[i] = ErrorCode.UnknownTopicOrPartition; // deleted while the marker was written
            }
            catch (IOException e)
            {
                state.Log.LogWarning("{Result} marker for producer {ProducerId} not written to {Topic}-{Partition}: {Error}", result, producerId, topic, index, e.Message);
                errors[i] = ErrorCode.KafkaStorageError;
            }
        }

        foreach (var (i, done) in pending)
        {
            errors[i] = await done.ConfigureAwait(false);
        }

        return [.. partitions.Select((p, i) => (p.Topic, p.Partition, errors[i]))];
    }

    private static async Task<ErrorCode> DurableAsync(IPartitionLog log, long end)
    {
        try
        {
            await log.WaitDurableAsync(end).ConfigureAwait(false);
            return ErrorCode.None;
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return e is ObjectDisposedException ? ErrorCode.UnknownTopicOrPartition : ErrorCode.KafkaStorageError;
        }
    }

    private async Task<ErrorCode> CompleteOffsetsAsync(int partition, long producerId, short epoch, int coordinatorEpoch, bool commit)
    {
        try
        {
            var error = await completeOffsets(partition, producerId, epoch, coordinatorEpoch, commit).ConfigureAwait(false);

            // The transaction coordinator does not expect a group coordinator's own errors; Kafka
            // turns them into NOT_LEADER_OR_FOLLOWER (retried).
            return error is ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress or ErrorCode.NotCoordinator ? ErrorCode.NotLeaderOrFollower : error;
        }
        catch (Exception e)
        {
            state.Log.LogError("the group coordinator could not end the transaction of producer {ProducerId} on {Topic}-{Partition}: {Error}", producerId, InternalTopics.ConsumerOffsets, partition, e.Message);
            return ErrorCode.UnknownServerError;
        }
    }
}
