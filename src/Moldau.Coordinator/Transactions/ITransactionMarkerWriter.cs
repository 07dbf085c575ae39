using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Transactions;

/// <summary>
/// Writes the COMMIT or ABORT marker of one producer's transaction into the partitions it wrote
/// to (Kafka's WriteTxnMarkers, which the coordinator sends to each partition's leader; here the
/// broker that holds the partitions). The coordinator calls it once a PrepareCommit or
/// PrepareAbort is durable, again for the partitions that failed with a retriable error, and
/// after a restart for every transaction found prepared.
/// </summary>
public interface ITransactionMarkerWriter
{
    /// <summary>
    /// Writes the marker into each of <paramref name="partitions"/> and waits until each is
    /// durable. Completes with one error per partition: <see cref="ErrorCode.None"/> once the
    /// marker is durable; <see cref="ErrorCode.UnknownTopicOrPartition"/> for a partition that no
    /// longer exists (deleted: it needs no marker); <see cref="ErrorCode.InvalidProducerEpoch"/>
    /// when the partition has seen a newer epoch of the producer; any other code is retried.
    /// </summary>
    /// <param name="producerId">The transactional producer.</param>
    /// <param name="producerEpoch">Its epoch as the coordinator holds it (bumped by a fence).</param>
    /// <param name="coordinatorEpoch">The coordinator's epoch (the leader epoch of its __transaction_state partition).</param>
    /// <param name="result">Commit or abort.</param>
    /// <param name="partitions">The partitions of the transaction (data partitions and __consumer_offsets partitions alike).</param>
    Task<IReadOnlyList<(string Topic, int Partition, ErrorCode Error)>> WriteMarkersAsync(
        long producerId, short producerEpoch, int coordinatorEpoch, ControlRecordType result, IReadOnlyList<(string Topic, int Partition)> partitions);
}
