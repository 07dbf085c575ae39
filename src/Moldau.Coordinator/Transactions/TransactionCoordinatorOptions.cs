namespace Moldau.Coordinator.Transactions;

/// <summary>The transaction coordinator's settings, with Kafka's keys and defaults.</summary>
public sealed class TransactionCoordinatorOptions
{
    /// <summary>transaction.state.log.num.partitions: one shard per partition of __transaction_state.</summary>
    public int StateTopicPartitions { get; init; } = 50;

    /// <summary>transaction.max.timeout.ms: the longest transaction.timeout.ms a producer may ask for.</summary>
    public int MaxTimeoutMs { get; init; } = 900_000;

    /// <summary>transactional.id.expiration.ms: an id idle this long (no transaction open) is forgotten.</summary>
    public long TransactionalIdExpirationMs { get; init; } = 604_800_000;

    /// <summary>transaction.abort.timed.out.transaction.cleanup.interval.ms: how often expired transactions are looked for.</summary>
    public long AbortTimedOutTransactionsIntervalMs { get; init; } = 10_000;

    /// <summary>transaction.remove.expired.transaction.cleanup.interval.ms: how often idle ids are looked for.</summary>
    public long RemoveExpiredTransactionalIdsIntervalMs { get; init; } = 3_600_000;

    /// <summary>
    /// How long AddPartitionsToTxn waits for the producer's previous transaction to finish ending
    /// (its markers written, its Complete record appended) before it answers CONCURRENT_TRANSACTIONS
    /// as Kafka does at once; 0 answers at once. Not a Kafka setting.
    /// </summary>
    public int EndWaitMs { get; init; } = 1_000;

    /// <summary>How long a failed marker write waits before it is tried again (Kafka's retry.backoff.ms).</summary>
    public int MarkerRetryBackoffMs { get; init; } = 100;
}
