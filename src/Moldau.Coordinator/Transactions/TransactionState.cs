namespace Moldau.Coordinator.Transactions;

/// <summary>
/// Where a transactional id's transaction is, with the ids Kafka's <c>TransactionState</c> writes
/// into <c>__transaction_state</c> (the TransactionStatus field) and the names DescribeTransactions
/// and ListTransactions report.
/// </summary>
public enum TransactionState : sbyte
{
    /// <summary>No transaction open (after InitProducerId, or once one ended).</summary>
    Empty = 0,

    /// <summary>Partitions were added; the producer is writing.</summary>
    Ongoing = 1,

    /// <summary>EndTxn(commit) is durable; the markers are being written.</summary>
    PrepareCommit = 2,

    /// <summary>EndTxn(abort), a fence or a timeout is durable; the markers are being written.</summary>
    PrepareAbort = 3,

    /// <summary>Every partition has its COMMIT marker.</summary>
    CompleteCommit = 4,

    /// <summary>Every partition has its ABORT marker.</summary>
    CompleteAbort = 5,

    /// <summary>The id is being expired (never written; Kafka keeps it in memory only).</summary>
    Dead = 6,

    /// <summary>A fence in progress (never written; Kafka keeps it in memory only).</summary>
    PrepareEpochFence = 7,
}

/// <summary>Kafka's names and rules for <see cref="TransactionState"/>.</summary>
public static class TransactionStates
{
    /// <summary>The name Kafka reports (DescribeTransactions, ListTransactions).</summary>
    public static string Name(this TransactionState state) => state switch
    {
        TransactionState.Empty => "Empty",
        TransactionState.Ongoing => "Ongoing",
        TransactionState.PrepareCommit => "PrepareCommit",
        TransactionState.PrepareAbort => "PrepareAbort",
        TransactionState.CompleteCommit => "CompleteCommit",
        TransactionState.CompleteAbort => "CompleteAbort",
        TransactionState.Dead => "Dead",
        TransactionState.PrepareEpochFence => "PrepareEpochFence",
        _ => state.ToString(),
    };

    /// <summary>The state named <paramref name="name"/> (Kafka's names, case-sensitive), or null.</summary>
    public static TransactionState? FromName(string name) => name switch
    {
        "Empty" => TransactionState.Empty,
        "Ongoing" => TransactionState.Ongoing,
        "PrepareCommit" => TransactionState.PrepareCommit,
        "PrepareAbort" => TransactionState.PrepareAbort,
        "CompleteCommit" => TransactionState.CompleteCommit,
        "CompleteAbort" => TransactionState.CompleteAbort,
        "Dead" => TransactionState.Dead,
        "PrepareEpochFence" => TransactionState.PrepareEpochFence,
        _ => null,
    };

    /// <summary>Whether an idle transactional id in this state may expire (transactional.id.expiration.ms).</summary>
    public static bool IsExpirationAllowed(this TransactionState state) =>
        state is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort;

    /// <summary>Whether the markers of an ended transaction are still being written.</summary>
    public static bool IsPreparing(this TransactionState state) =>
        state is TransactionState.PrepareCommit or TransactionState.PrepareAbort;
}
