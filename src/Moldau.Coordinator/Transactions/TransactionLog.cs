using Moldau.Protocol;
using Moldau.Protocol.Coordinator;

namespace Moldau.Coordinator.Transactions;

/// <summary>
/// The records of <c>__transaction_state</c>, in Kafka's format (its <c>TransactionLog</c>): the
/// key is an int16 version (0) then TransactionLogKey (the transactional id); the value an int16
/// version then TransactionLogValue: producer id and epoch, timeout, state, the partitions
/// (grouped by topic; null in Empty), last update and start timestamps. A null value is a
/// tombstone (an expired id).
/// </summary>
public static class TransactionLog
{
    /// <summary>The topic's name.</summary>
    public const string Name = "__transaction_state";

    private const short KeyVersion = 0;

    // Kafka writes value version 0 until transaction.version 2 (KIP-890 part 2, which Moldau does
    // not serve) makes it the flexible version 1; both are read.
    private const short ValueVersion = 0;

    /// <summary>The partition holding a transactional id: abs(Java hashCode of the id) mod partitions, as Kafka picks it.</summary>
    public static int PartitionFor(string transactionalId, int partitions) => OffsetsTopic.PartitionFor(transactionalId, partitions);

    /// <summary>A record's key.</summary>
    public static byte[] Key(string transactionalId) => Versioned(KeyVersion, new TransactionLogKey { TransactionalId = transactionalId });

    /// <summary>A record's value for the given state.</summary>
    public static byte[] Value(TransactionRecord r)
    {
        var value = new TransactionLogValue
        {
            ProducerId = r.ProducerId,
            ProducerEpoch = r.ProducerEpoch,
            TransactionTimeoutMs = r.TimeoutMs,
            TransactionStatus = (sbyte)r.State,
            TransactionLastUpdateTimestampMs = r.LastUpdateTimestamp,
            TransactionStartTimestampMs = r.StartTimestamp,
        };
        if (r.State == TransactionState.Empty)
        {
            value.TransactionPartitions = null;
        }
        else
        {
            foreach (var group in r.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal))
            {
                var item = value.AddTransactionPartitionsItem();
                item.Topic = group.Key;
                item.PartitionIds.AddRange(group.Select(p => p.Partition).Order());
            }
        }

        return Versioned(ValueVersion, value);
    }

    private static byte[] Versioned(short version, IKafkaMessage message)
    {
        var bytes = new byte[2 + message.Size(version)];
        var writer = new KafkaWriter(bytes);
        writer.WriteInt16(version);
        message.Write(ref writer, version);
        return bytes;
    }

    /// <summary>
    /// Decodes one record: the transactional id and its state, or a null state for a tombstone;
    /// null for a key of a version Kafka does not write (skipped, as Kafka skips it). Throws
    /// <see cref="KafkaProtocolException"/> for bytes that are not what their version says.
    /// </summary>
    public static (string TransactionalId, TransactionRecord? Value)? Decode(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        var kr = new KafkaReader(key);
        var keyVersion = kr.ReadInt16();
        if (keyVersion is < TransactionLogKey.LowestVersion or > TransactionLogKey.HighestVersion)
        {
            return null;
        }

        var k = new TransactionLogKey();
        k.Read(ref kr, keyVersion);
        if (value is not { } v)
        {
            return (k.TransactionalId, null);
        }

        var vr = new KafkaReader(v);
        var valueVersion = vr.ReadInt16();
        if (valueVersion is < TransactionLogValue.LowestVersion or > TransactionLogValue.HighestVersion)
        {
            throw new KafkaProtocolException($"transaction log value version {valueVersion} of {k.TransactionalId} is not known");
        }

        var t = new TransactionLogValue();
        t.Read(ref vr, valueVersion);
        if (t.TransactionStatus is < 0 or > (sbyte)TransactionState.PrepareEpochFence)
        {
            throw new KafkaProtocolException($"transaction state {t.TransactionStatus} of {k.TransactionalId} is not known");
        }

        var state = (TransactionState)t.TransactionStatus;
        var partitions = new List<(string Topic, int Partition)>();
        if (state != TransactionState.Empty && t.TransactionPartitions is { } groups)
        {
            foreach (var g in groups)
            {
                foreach (var p in g.PartitionIds)
                {
                    partitions.Add((g.Topic, p));
                }
            }
        }

        return (k.TransactionalId, new TransactionRecord(t.ProducerId, t.ProducerEpoch, t.TransactionTimeoutMs, state, partitions, t.TransactionStartTimestampMs, t.TransactionLastUpdateTimestampMs));
    }
}

/// <summary>What one <c>__transaction_state</c> record says of a transactional id.</summary>
/// <param name="ProducerId">The producer id.</param>
/// <param name="ProducerEpoch">Its epoch.</param>
/// <param name="TimeoutMs">transaction.timeout.ms.</param>
/// <param name="State">The state.</param>
/// <param name="Partitions">The partitions of the transaction (empty in Empty and Complete*).</param>
/// <param name="StartTimestamp">When the transaction started (ms), -1 when none did.</param>
/// <param name="LastUpdateTimestamp">When the id last changed (ms).</param>
public sealed record TransactionRecord(long ProducerId, short ProducerEpoch, int TimeoutMs, TransactionState State, IReadOnlyCollection<(string Topic, int Partition)> Partitions, long StartTimestamp, long LastUpdateTimestamp);
