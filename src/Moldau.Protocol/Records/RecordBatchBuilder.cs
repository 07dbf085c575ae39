namespace Moldau.Protocol.Records;

/// <summary>A record to put in a batch.</summary>
/// <param name="Key">The key, or null.</param>
/// <param name="Value">The value, or null (a tombstone).</param>
/// <param name="Timestamp">Create time in ms since the epoch.</param>
/// <param name="Headers">Headers, or null for none.</param>
public sealed record RecordToWrite(byte[]? Key, byte[]? Value, long Timestamp, IReadOnlyList<(string Key, byte[]? Value)>? Headers = null);

/// <summary>Builds an uncompressed RecordBatch v2 with its lengths and CRC (see <see cref="RecordBatch"/>).</summary>
public static class RecordBatchBuilder
{
    /// <summary>Builds a batch of <paramref name="records"/> starting at <paramref name="baseOffset"/>.</summary>
    public static byte[] Build(
        IReadOnlyList<RecordToWrite> records,
        long baseOffset = 0,
        long producerId = -1,
        short producerEpoch = -1,
        int baseSequence = -1,
        short attributes = 0,
        int partitionLeaderEpoch = -1,
        CompressionType compression = CompressionType.None)
    {
        if (records.Count == 0)
        {
            throw new ArgumentException("a batch holds at least one record", nameof(records));
        }

        var baseTimestamp = records[0].Timestamp;
        var maxTimestamp = records.Max(r => r.Timestamp);
        var size = RecordBatch.HeaderSize;
        var recordSizes = new int[records.Count];
        for (var i = 0; i < records.Count; i++)
        {
            recordSizes[i] = BodySize(records[i], i, baseTimestamp);
            size += KafkaSize.VarInt(recordSizes[i]) + recordSizes[i];
        }

        var bytes = new byte[size];
        var w = new KafkaWriter(bytes);
        w.WriteInt64(baseOffset);
        w.WriteInt32(size - RecordBatch.LogOverhead);
        w.WriteInt32(partitionLeaderEpoch);
        w.WriteInt8(2);
        w.WriteUInt32(0); // CRC, filled in below
        w.WriteInt16(attributes);
        w.WriteInt32(records.Count - 1);
        w.WriteInt64(baseTimestamp);
        w.WriteInt64(maxTimestamp);
        w.WriteInt64(producerId);
        w.WriteInt16(producerEpoch);
        w.WriteInt32(baseSequence);
        w.WriteInt32(records.Count);
        for (var i = 0; i < records.Count; i++)
        {
            var r = records[i];
            w.WriteVarInt(recordSizes[i]);
            w.WriteInt8(0);
            w.WriteVarLong(r.Timestamp - baseTimestamp);
            w.WriteVarInt(i);
            WriteVarBytes(ref w, r.Key);
            WriteVarBytes(ref w, r.Value);
            w.WriteVarInt(r.Headers?.Count ?? 0);
            foreach (var (key, value) in r.Headers ?? [])
            {
                WriteVarBytes(ref w, System.Text.Encoding.UTF8.GetBytes(key));
                WriteVarBytes(ref w, value);
            }
        }

        if (compression != CompressionType.None)
        {
            // Compress the records section and set the codec bits; the header stays the same.
            var section = RecordCompression.Compress(compression, bytes.AsSpan(RecordBatch.HeaderSize));
            var compressed = new byte[RecordBatch.HeaderSize + section.Length];
            bytes.AsSpan(0, RecordBatch.HeaderSize).CopyTo(compressed);
            section.CopyTo(compressed, RecordBatch.HeaderSize);
            var header = new MutableRecordBatchHeader(compressed);
            header.BatchLength = compressed.Length - RecordBatch.LogOverhead;
            header.Compression = compression;
            bytes = compressed;
        }

        new MutableRecordBatchHeader(bytes).UpdateCrc();
        return bytes;
    }

    private static int BodySize(RecordToWrite r, int offsetDelta, long baseTimestamp)
    {
        var size = 1 + KafkaSize.VarLong(r.Timestamp - baseTimestamp) + KafkaSize.VarInt(offsetDelta)
            + VarBytesSize(r.Key) + VarBytesSize(r.Value) + KafkaSize.VarInt(r.Headers?.Count ?? 0);
        foreach (var (key, value) in r.Headers ?? [])
        {
            size += VarBytesSize(System.Text.Encoding.UTF8.GetBytes(key)) + VarBytesSize(value);
        }

        return size;
    }

    private static int VarBytesSize(byte[]? b) => b is null ? 1 : KafkaSize.VarInt(b.Length) + b.Length;

    private static void WriteVarBytes(ref KafkaWriter w, byte[]? b)
    {
        if (b is null)
        {
            w.WriteVarInt(-1);
            return;
        }

        w.WriteVarInt(b.Length);
        w.WriteRaw(b);
    }
}
