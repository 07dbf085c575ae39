namespace Moldau.Storage;

/// <summary>What an append did, as the partition's idempotent producer state decided it.</summary>
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
}
