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
        var batch = new byte[RecordBatch.HeaderSize + records.Length];
        var header = WriteHeader(batch, original, original.Attributes, baseTimestamp, maxTimestamp, retained.Count);
        header.HasDeleteHorizon = deleteHorizon >= 0;
        records.CopyTo(batch, RecordBatch.HeaderSize);
        header.UpdateCrc();
        return batch;
    }

    /// <summary>
    /// The header alone, no records: what Kafka keeps of a producer's last batch when all its
    /// records were removed, so the producer's epoch and last sequence survive a restart.
    /// Uncompressed, base_timestamp -1, max_timestamp as it was.
    /// </summary>
    public static byte[] EmptyHeader(RecordBatch original)
    {
        var batch = new byte[RecordBatch.HeaderSize];
        var header = WriteHeader(batch, original, 0, -1, original.MaxTimestamp, 0);

        // Of the attributes only the timestamp type, transactional and control bits stay.
        var kept = original.Header;
        header.TimestampType = kept.TimestampType;
        header.IsTransactional = kept.IsTransactional;
        header.IsControl = kept.IsControl;
        header.UpdateCrc();
        return batch;
    }

    // Every field but the CRC, which the caller seals once the records are in.
    private static MutableRecordBatchHeader WriteHeader(byte[] batch, RecordBatch original, short attributes, long baseTimestamp, long maxTimestamp, int count)
    {
        var header = new MutableRecordBatchHeader(batch);
        header.BaseOffset = original.BaseOffset;
        header.BatchLength = batch.Length - RecordBatch.LogOverhead;
        header.PartitionLeaderEpoch = original.PartitionLeaderEpoch;
        header.Magic = 2;
        header.Attributes = attributes;
        header.LastOffsetDelta = original.LastOffsetDelta;
        header.BaseTimestamp = baseTimestamp;
        header.MaxTimestamp = maxTimestamp;
        header.ProducerId = original.ProducerId;
        header.ProducerEpoch = original.ProducerEpoch;
        header.BaseSequence = original.BaseSequence;
        header.RecordCount = count;
        return header;
    }

    private static int BodySize(RawRecord r, long baseTimestamp) =>
        1 + KafkaSize.VarLong(r.Timestamp - baseTimestamp) + KafkaSize.VarInt(r.OffsetDelta) + r.Rest.Length;
}
