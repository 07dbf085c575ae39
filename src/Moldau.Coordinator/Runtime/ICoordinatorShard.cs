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

    /// <summary>Called once the shard's partition has been replayed (and for a shard whose partition does not exist yet).</summary>
    void OnLoaded();
}

/// <summary>What a shard gets from the runtime: where it is, the clock and its own timer.</summary>
/// <typeparam name="TShard">The shard state.</typeparam>
/// <param name="Partition">The partition the shard owns.</param>
/// <param name="Time">The clock.</param>
/// <param name="Timer">The shard's timer: its operations run in the shard's turn.</param>
public sealed record CoordinatorShardContext<TShard>(int Partition, TimeProvider Time, CoordinatorTimer<TShard> Timer)
    where TShard : class, ICoordinatorShard;
