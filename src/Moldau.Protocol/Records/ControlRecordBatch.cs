using System.Buffers.Binary;

namespace Moldau.Protocol.Records;

/// <summary>The kind of a control record (the int16 type in its key).</summary>
public enum ControlRecordType : short
{
    /// <summary>The transaction ended with an abort: its records are skipped by read_committed consumers.</summary>
    Abort = 0,

    /// <summary>The transaction ended with a commit.</summary>
    Commit = 1,
}

/// <summary>
/// Transaction markers as Kafka writes them: a batch with the transactional and control bits set,
/// holding one record whose key is (version int16 = 0, type int16) and whose value, the
/// EndTransactionMarker, is (version int16 = 0, coordinator epoch int32). Base sequence -1.
/// </summary>
public static class ControlRecordBatch
{
    /// <summary>The attributes of a marker batch: transactional and control, no compression.</summary>
    public const short Attributes = RecordBatchHeader.TransactionalBit | RecordBatchHeader.ControlBit;

    /// <summary>Builds one marker batch for <paramref name="producerId"/> at <paramref name="producerEpoch"/>.</summary>
    /// <param name="producerId">The transactional producer.</param>
    /// <param name="producerEpoch">Its epoch (the coordinator's, which may be newer than the producer's last write).</param>
    /// <param name="coordinatorEpoch">The transaction coordinator's epoch.</param>
    /// <param name="type">Commit or abort.</param>
    /// <param name="timestamp">The record's timestamp (ms since the epoch).</param>
    public static byte[] Build(long producerId, short producerEpoch, int coordinatorEpoch, ControlRecordType type, long timestamp)
    {
        var key = new byte[4];
        BinaryPrimitives.WriteInt16BigEndian(key, 0);
        BinaryPrimitives.WriteInt16BigEndian(key.AsSpan(2), (short)type);
        var value = new byte[6];
        BinaryPrimitives.WriteInt16BigEndian(value, 0);
        BinaryPrimitives.WriteInt32BigEndian(value.AsSpan(2), coordinatorEpoch);
        return RecordBatchBuilder.Build([new RecordToWrite(key, value, timestamp)], producerId: producerId, producerEpoch: producerEpoch, attributes: Attributes);
    }

    /// <summary>
    /// Reads the type of a control record from its key; null when the key is not a control key
    /// Kafka knows (shorter than 4 bytes, or a type other than abort and commit).
    /// </summary>
    public static ControlRecordType? TypeOf(ReadOnlySpan<byte> key)
    {
        if (key.Length < 4)
        {
            return null;
        }

        var type = BinaryPrimitives.ReadInt16BigEndian(key[2..]);
        return type is 0 or 1 ? (ControlRecordType)type : null;
    }

    /// <summary>The coordinator epoch in a marker's value, or -1 when the value is too short.</summary>
    public static int CoordinatorEpochOf(ReadOnlySpan<byte> value) =>
        value.Length < 6 ? -1 : BinaryPrimitives.ReadInt32BigEndian(value[2..]);
}
