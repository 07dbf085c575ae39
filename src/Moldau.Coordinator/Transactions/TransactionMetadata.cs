using Moldau.Protocol;

namespace Moldau.Coordinator.Transactions;

/// <summary>
/// One transactional id as its shard holds it (Kafka's <c>TransactionMetadata</c>). The fields a
/// record carries change only through the shard's replay; <see cref="PreviousProducerId"/> and
/// <see cref="LastProducerEpoch"/> are not in Kafka's record (value version 0) and live in memory,
/// as in Kafka: after a restart they are unknown (-1).
/// </summary>
internal sealed class TransactionMetadata(string transactionalId)
{
    public string TransactionalId { get; } = transactionalId;

    public long ProducerId { get; set; } = -1;

    /// <summary>The producer id before the last InitProducerId (KIP-360: a retry after the epoch ran out names it).</summary>
    public long PreviousProducerId { get; set; } = -1;

    public short ProducerEpoch { get; set; } = -1;

    /// <summary>The epoch before the last InitProducerId bump, when the producer asked for it (KIP-360 retries), else -1.</summary>
    public short LastProducerEpoch { get; set; } = -1;

    public int TimeoutMs { get; set; }

    public TransactionState State { get; set; }

    public HashSet<(string Topic, int Partition)> Partitions { get; } = [];

    public long StartTimestamp { get; set; } = -1;

    public long LastUpdateTimestamp { get; set; }

    /// <summary>Kafka never lets a client have an epoch of Short.MaxValue, so a fence can always bump it.</summary>
    public bool IsProducerEpochExhausted => ProducerEpoch >= short.MaxValue - 1;

    /// <summary>This transaction's state as a record would hold it, with some fields changed.</summary>
    public TransactionRecord ToRecord(long now) =>
        new(ProducerId, ProducerEpoch, TimeoutMs, State, State is TransactionState.Empty ? [] : [.. Partitions], StartTimestamp, now);
}

/// <summary>What the produce path reads of a transactional id without entering its shard's turn.</summary>
/// <param name="ProducerId">The producer id.</param>
/// <param name="ProducerEpoch">Its epoch.</param>
/// <param name="State">The state.</param>
/// <param name="Partitions">The partitions of the open (or ending) transaction; empty otherwise. Never changed once published.</param>
internal sealed record TransactionView(long ProducerId, short ProducerEpoch, TransactionState State, IReadOnlySet<(string Topic, int Partition)> Partitions);

/// <summary>What InitProducerId answers.</summary>
/// <param name="Error">The error, or None.</param>
/// <param name="ProducerId">The producer id, -1 on error.</param>
/// <param name="ProducerEpoch">The epoch, -1 on error.</param>
public readonly record struct InitProducerIdResult(ErrorCode Error, long ProducerId, short ProducerEpoch)
{
    /// <summary>An error answer.</summary>
    public static InitProducerIdResult Of(ErrorCode error) => new(error, -1, -1);
}

/// <summary>DescribeTransactions' answer for one transactional id.</summary>
/// <param name="TransactionalId">The id.</param>
/// <param name="Error">TRANSACTIONAL_ID_NOT_FOUND for an unknown id, else None.</param>
/// <param name="ProducerId">The producer id.</param>
/// <param name="ProducerEpoch">Its epoch.</param>
/// <param name="State">Kafka's state name.</param>
/// <param name="TimeoutMs">transaction.timeout.ms.</param>
/// <param name="StartTimestamp">When the transaction started, -1 when none is open.</param>
/// <param name="Topics">The partitions of the transaction by topic.</param>
public sealed record TransactionDescription(string TransactionalId, ErrorCode Error, long ProducerId, short ProducerEpoch, string State, int TimeoutMs, long StartTimestamp, IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)> Topics);

/// <summary>ListTransactions' answer for one transactional id.</summary>
/// <param name="TransactionalId">The id.</param>
/// <param name="ProducerId">Its producer id.</param>
/// <param name="State">Kafka's state name.</param>
public sealed record TransactionListing(string TransactionalId, long ProducerId, string State);
