using System.Buffers.Binary;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Cleaning;

/// <summary>
/// Writes what a cleaning pass keeps of a batch (layout in <see cref="RecordBatch"/>), as Kafka's
/// v2 filtering does: the base offset and last_offset_delta of the original stay, so the batch
/// still spans the same offsets and the producer's last sequence (base_sequence +
/// last_offset_delta) is unchanged; producer id, epoch, base sequence, partition leader epoch,
/// timestamp type, transactional and control bits are copied; the records keep their offset
/// deltas and are compressed again with the batch's own codec.
/// </summary>
internal static class RetainedBatch
{
    private const short DeleteHorizonBit = 0x40;

    /// <summary>
    /// A batch of <paramref name="retained"/> (at least one). With a <paramref name="deleteHorizon"/>
    /// (>= 0), the delete-horizon attribute is set and base_timestamp holds the horizon, the
    /// records' timestamp deltas counted from it (KIP-534); otherwise base_timestamp is the first
    /// retained record's timestamp.
    /// </summary>
    public static byte[] Build(RecordBatch original, IReadOnlyList<RawRecord> retained, long deleteHorizon)
    {
        var baseTimestamp = deleteHorizon >= 0 ? deleteHorizon : retained[0].Timestamp;
        var maxTimestamp = original.IsLogAppendTime ? original.MaxTimestamp : retained.Max(r => r.Timestamp);
        var size = 0;
        foreach (var r in retained)
        {
            var body = BodySize(r, baseTimestamp);
            size += KafkaSize.VarInt(body) + body;
        }

        var section = new byte[size];
        var w = new KafkaWriter(section);
        foreach (var r in retained)
        {
            w.WriteVarInt(BodySize(r, baseTimestamp));
            w.WriteInt8(r.Attributes);
            w.WriteVarLong(r.Timestamp - baseTimestamp);
            w.WriteVarInt(r.OffsetDelta);
            w.WriteRaw(r.Rest.Span);
        }

        var records = original.Compression == CompressionType.None ? section : RecordCompression.Compress(original.Compression, section);
        var attributes = (short)((original.Attributes & ~DeleteHorizonBit) | (deleteHorizon >= 0 ? DeleteHorizonBit : 0));
        var batch = new byte[RecordBatch.HeaderSize + records.Length];
        WriteHeader(batch, original, attributes, baseTimestamp, maxTimestamp, retained.Count);
        records.CopyTo(batch, RecordBatch.HeaderSize);
        return Seal(batch);
    }

    /// <summary>
    /// The header alone, no records: what Kafka keeps of a producer's last batch when all its
    /// records were removed, so the producer's epoch and last sequence survive a restart.
    /// Uncompressed, base_timestamp -1, max_timestamp as it was.
    /// </summary>
    public static byte[] EmptyHeader(RecordBatch original)
    {
        var batch = new byte[RecordBatch.HeaderSize];
        var attributes = (short)(original.Attributes & 0x38); // timestamp type, transactional, control
        WriteHeader(batch, original, attributes, -1, original.MaxTimestamp, 0);
        return Seal(batch);
    }

    private static void WriteHeader(byte[] batch, RecordBatch original, short attributes, long baseTimestamp, long maxTimestamp, int count)
    {
        var w = new KafkaWriter(batch);
        w.WriteInt64(original.BaseOffset);
        w.WriteInt32(batch.Length - RecordBatch.LogOverhead);
        w.WriteInt32(original.PartitionLeaderEpoch);
        w.WriteInt8(2);
        w.WriteUInt32(0); // CRC, sealed last
        w.WriteInt16(attributes);
        w.WriteInt32(original.LastOffsetDelta);
        w.WriteInt64(baseTimestamp);
        w.WriteInt64(maxTimestamp);
        w.WriteInt64(original.ProducerId);
        w.WriteInt16(original.ProducerEpoch);
        w.WriteInt32(original.BaseSequence);
        w.WriteInt32(count);
    }

    private static byte[] Seal(byte[] batch)
    {
        BinaryPrimitives.WriteUInt32BigEndian(batch.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(batch.AsSpan(RecordBatch.AttributesOffset)));
        return batch;
    }

    private static int BodySize(RawRecord r, long baseTimestamp) =>
        1 + KafkaSize.VarLong(r.Timestamp - baseTimestamp) + KafkaSize.VarInt(r.OffsetDelta) + r.Rest.Length;
}
