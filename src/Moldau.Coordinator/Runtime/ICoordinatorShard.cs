namespace Moldau.Coordinator.Runtime;

/// <summary>
/// The state of one coordinator shard (one partition of the coordinator's topic). The runtime
/// calls it one operation at a time, never concurrently, so it needs no locks of its own.
/// </summary>
public interface ICoordinatorShard
{
    /// <summary>
    /// Applies one record: at load time, read back from the partition, and live, once a write
    /// operation's records are durable. Throws <see cref="Moldau.Protocol.KafkaProtocolException"/>
    /// for a record that does not decode (a load skips the rest of that batch).
    /// </summary>
    void Replay(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value);

    /// <summary>
    /// Applies one record with where it came from: its offset in the partition and the producer
    /// of its batch (a transactional batch's records wait for their transaction's marker, as
    /// Kafka's group coordinator keeps offsets committed in a transaction pending until then).
    /// The runtime calls this overload; a shard that has no use for the origin keeps the default,
    /// which is <see cref="Replay(ReadOnlyMemory{byte}, ReadOnlyMemory{byte}?)"/>.
    /// </summary>
    void Replay(in CoordinatorRecordOrigin origin, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value) => Replay(key, value);

    /// <summary>
    /// Applies a transaction marker (a COMMIT or ABORT control record) of
    /// <paramref name="producerId"/>: at load time, read back from the partition, and live, once
    /// the marker is durable. Kafka's <c>replayEndTransactionMarker</c>. The default ignores it (a
    /// shard that never writes transactional records).
    /// </summary>
    void ReplayEndTransaction(long producerId, short producerEpoch, bool commit)
    {
    }

    /// <summary>Called once the shard's partition has been replayed (and for a shard whose partition does not exist yet).</summary>
    void OnLoaded();
}

/// <summary>Where a replayed record came from.</summary>
/// <param name="Offset">The record's offset in the coordinator's partition.</param>
/// <param name="ProducerId">The producer id of its batch (-1 for the coordinator's own non-transactional batches).</param>
/// <param name="ProducerEpoch">The producer epoch of its batch (-1 when none).</param>
/// <param name="IsTransactional">Whether its batch is transactional: the record counts only once its transaction commits.</param>
public readonly record struct CoordinatorRecordOrigin(long Offset, long ProducerId, short ProducerEpoch, bool IsTransactional)
{
    /// <summary>A record of a non-transactional batch at <paramref name="offset"/>.</summary>
    public static CoordinatorRecordOrigin At(long offset) => new(offset, -1, -1, false);
}

/// <summary>What a shard gets from the runtime: where it is, the clock and its own timer.</summary>
/// <typeparam name="TShard">The shard state.</typeparam>
/// <param name="Partition">The partition the shard owns.</param>
/// <param name="Time">The clock.</param>
/// <param name="Timer">The shard's timer: its operations run in the shard's turn.</param>
public sealed record CoordinatorShardContext<TShard>(int Partition, TimeProvider Time, CoordinatorTimer<TShard> Timer)
    where TShard : class, ICoordinatorShard;
