namespace Moldau.Storage;

/// <summary>What an append did, as the partition's idempotent and transactional producer state decided it.</summary>
public enum AppendStatus
{
    /// <summary>The batch was written.</summary>
    Appended,

    /// <summary>The batch repeats one of the producer's last five: not written again.</summary>
    Duplicate,

    /// <summary>The batch's first sequence does not follow the producer's last one.</summary>
    OutOfOrderSequence,

    /// <summary>The batch's producer epoch is older than the producer's current epoch.</summary>
    InvalidProducerEpoch,

    /// <summary>The batch, re-compressed into the topic's compression.type, is larger than max.message.bytes.</summary>
    MessageTooLarge,

    /// <summary>
    /// A non-transactional batch of a producer whose transaction is open in this partition
    /// (Kafka's INVALID_TXN_STATE).
    /// </summary>
    InvalidTxnState,

    /// <summary>
    /// A transaction marker whose coordinator epoch is older than the one of the producer's last
    /// marker here: a zombie coordinator (Kafka's TRANSACTION_COORDINATOR_FENCED).
    /// </summary>
    TransactionCoordinatorFenced,
}
