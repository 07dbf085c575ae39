using Moldau.Protocol.Records;

namespace Moldau.Protocol.Tests;

/// <summary>
/// The batch header view against batches built by <see cref="RecordBatchBuilder"/>: every accessor
/// reads what a field-by-field decode of the same bytes finds, and every setter changes exactly
/// that field's bytes (positions from Kafka's RecordBatch v2 layout, written out here on their own).
/// </summary>
public sealed class RecordBatchHeaderTests
{
    // Kafka's DefaultRecordBatch layout: field, position, size.
    private static readonly (string Field, int At, int Size)[] Layout =
    [
        ("BaseOffset", 0, 8), ("BatchLength", 8, 4), ("PartitionLeaderEpoch", 12, 4), ("Magic", 16, 1),
        ("Crc", 17, 4), ("Attributes", 21, 2), ("LastOffsetDelta", 23, 4), ("BaseTimestamp", 27, 8),
        ("MaxTimestamp", 35, 8), ("ProducerId", 43, 8), ("ProducerEpoch", 51, 2), ("BaseSequence", 53, 4),
        ("RecordCount", 57, 4),
    ];

    private static byte[] Built(CompressionType compression = CompressionType.None, short attributes = 0x10) =>
        RecordBatchBuilder.Build(
            [new([1], [2, 3], 1_700_000_000_123), new(null, [4], 1_700_000_000_500), new([5], null, 1_700_000_000_077)],
            baseOffset: 0x0102_0304_0506_0708,
            producerId: 0x1122_3344_5566_7788,
            producerEpoch: 0x0A0B,
            baseSequence: 0x0C0D_0E0F,
            attributes: attributes,
            partitionLeaderEpoch: 0x2131_4151,
            compression: compression);

    /// <summary>The header decoded field by field, in order, with the protocol reader.</summary>
    private static Dictionary<string, long> Decode(byte[] batch)
    {
        var r = new KafkaReader(batch);
        return new Dictionary<string, long>
        {
            ["BaseOffset"] = r.ReadInt64(),
            ["BatchLength"] = r.ReadInt32(),
            ["PartitionLeaderEpoch"] = r.ReadInt32(),
            ["Magic"] = r.ReadInt8(),
            ["Crc"] = r.ReadUInt32(),
            ["Attributes"] = r.ReadInt16(),
            ["LastOffsetDelta"] = r.ReadInt32(),
            ["BaseTimestamp"] = r.ReadInt64(),
            ["MaxTimestamp"] = r.ReadInt64(),
            ["ProducerId"] = r.ReadInt64(),
            ["ProducerEpoch"] = r.ReadInt16(),
            ["BaseSequence"] = r.ReadInt32(),
            ["RecordCount"] = r.ReadInt32(),
        };
    }

    private static long Get(RecordBatchHeader h, string field) => field switch
    {
        "BaseOffset" => h.BaseOffset,
        "BatchLength" => h.BatchLength,
        "PartitionLeaderEpoch" => h.PartitionLeaderEpoch,
        "Magic" => h.Magic,
        "Crc" => h.Crc,
        "Attributes" => h.Attributes,
        "LastOffsetDelta" => h.LastOffsetDelta,
        "BaseTimestamp" => h.BaseTimestamp,
        "MaxTimestamp" => h.MaxTimestamp,
        "ProducerId" => h.ProducerId,
        "ProducerEpoch" => h.ProducerEpoch,
        "BaseSequence" => h.BaseSequence,
        "RecordCount" => h.RecordCount,
        _ => throw new ArgumentException(field),
    };

    private static void Set(MutableRecordBatchHeader h, string field, long value)
    {
        switch (field)
        {
            case "BaseOffset": h.BaseOffset = value; break;
            case "BatchLength": h.BatchLength = (int)value; break;
            case "PartitionLeaderEpoch": h.PartitionLeaderEpoch = (int)value; break;
            case "Magic": h.Magic = (byte)value; break;
            case "Crc": h.Crc = (uint)value; break;
            case "Attributes": h.Attributes = (short)value; break;
            case "LastOffsetDelta": h.LastOffsetDelta = (int)value; break;
            case "BaseTimestamp": h.BaseTimestamp = value; break;
            case "MaxTimestamp": h.MaxTimestamp = value; break;
            case "ProducerId": h.ProducerId = value; break;
            case "ProducerEpoch": h.ProducerEpoch = (short)value; break;
            case "BaseSequence": h.BaseSequence = (int)value; break;
            case "RecordCount": h.RecordCount = (int)value; break;
            default: throw new ArgumentException(field);
        }
    }

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Zstd)]
    public void EveryAccessorReadsWhatTheFieldHolds(CompressionType compression)
    {
        var batch = Built(compression);
        var expected = Decode(batch);
        var header = new RecordBatchHeader(batch);
        foreach (var (field, _, _) in Layout)
        {
            Assert.True(expected[field] == Get(header, field), $"{field}: decoded {expected[field]}, view {Get(header, field)}");
        }

        // And what the builder was asked for.
        Assert.Equal(0x0102_0304_0506_0708, header.BaseOffset);
        Assert.Equal(batch.Length - 12, header.BatchLength);
        Assert.Equal(batch.Length, header.TotalSize);
        Assert.Equal(batch.Length, RecordBatchHeader.DeclaredSize(batch));
        Assert.Equal(0x2131_4151, header.PartitionLeaderEpoch);
        Assert.Equal(2, header.Magic);
        Assert.Equal(compression, header.Compression);
        Assert.Equal(TimestampType.CreateTime, header.TimestampType);
        Assert.False(header.IsLogAppendTime);
        Assert.True(header.IsTransactional);
        Assert.False(header.IsControl);
        Assert.False(header.HasDeleteHorizon);
        Assert.Equal(2, header.LastOffsetDelta);
        Assert.Equal(0x0102_0304_0506_0708 + 2, header.LastOffset);
        Assert.Equal(1_700_000_000_123, header.BaseTimestamp);
        Assert.Equal(1_700_000_000_500, header.MaxTimestamp);
        Assert.Equal(0x1122_3344_5566_7788, header.ProducerId);
        Assert.Equal(0x0A0B, header.ProducerEpoch);
        Assert.Equal(0x0C0D_0E0F, header.BaseSequence);
        Assert.Equal(3, header.RecordCount);
        Assert.True(header.IsCrcValid());

        // The whole-batch view reads through the same header.
        var view = new RecordBatch(batch);
        Assert.Equal(header.LastOffset, view.LastOffset);
        Assert.Equal(header.MaxTimestamp, view.MaxTimestamp);
        Assert.Equal(header.ProducerEpoch, view.ProducerEpoch);
    }

    [Fact]
    public void EverySetterWritesExactlyItsFieldsBytes()
    {
        var original = Built();
        foreach (var (field, at, size) in Layout)
        {
            var batch = original.ToArray();
            var value = field switch
            {
                "Magic" => 0x7EL,
                "Crc" => 0xFEDC_BA98L,
                _ => size switch
                {
                    2 => -2L - at,
                    4 => -0x0102_0304L - at,
                    _ => -0x0102_0304_0506_0708L - at,
                },
            };
            Set(new MutableRecordBatchHeader(batch), field, value);

            Assert.True(value == Get(new RecordBatchHeader(batch), field), $"{field} reads back");
            Assert.True(value == Decode(batch)[field], $"{field} decodes back");
            for (var i = 0; i < batch.Length; i++)
            {
                var inField = i >= at && i < at + size;
                Assert.True(inField || batch[i] == original[i], $"setting {field} changed byte {i}");
            }

            Assert.False(batch.AsSpan(at, size).SequenceEqual(original.AsSpan(at, size)), $"setting {field} changed nothing");
        }
    }

    [Fact]
    public void TheAttributeBitsAreSetAndClearedAlone()
    {
        var batch = Built(CompressionType.Lz4, attributes: 0);
        var header = new MutableRecordBatchHeader(batch);
        Assert.Equal((short)3, header.Attributes);

        header.TimestampType = TimestampType.LogAppendTime;
        Assert.Equal((short)(3 | 0x08), header.Attributes);
        header.IsTransactional = true;
        Assert.Equal((short)(3 | 0x08 | 0x10), header.Attributes);
        header.IsControl = true;
        Assert.Equal((short)(3 | 0x08 | 0x10 | 0x20), header.Attributes);
        header.HasDeleteHorizon = true;
        Assert.Equal((short)(3 | 0x08 | 0x10 | 0x20 | 0x40), header.Attributes);
        header.Compression = CompressionType.Snappy;
        Assert.Equal((short)(2 | 0x08 | 0x10 | 0x20 | 0x40), header.Attributes);

        var read = header.ReadOnly;
        Assert.True(read.IsLogAppendTime && read.IsTransactional && read.IsControl && read.HasDeleteHorizon);
        Assert.Equal(CompressionType.Snappy, read.Compression);

        header.TimestampType = TimestampType.CreateTime;
        header.IsTransactional = false;
        header.IsControl = false;
        header.HasDeleteHorizon = false;
        header.Compression = CompressionType.None;
        Assert.Equal((short)0, header.Attributes);
    }

    [Fact]
    public void TheCrcCoversFromTheAttributesOnAndUpdateCrcSealsIt()
    {
        var batch = Built();
        var header = new MutableRecordBatchHeader(batch);

        // Outside the CRC: base offset, length, leader epoch.
        header.BaseOffset = 77;
        header.PartitionLeaderEpoch = 9;
        Assert.True(header.ReadOnly.IsCrcValid());

        header.MaxTimestamp = 1;
        Assert.False(header.ReadOnly.IsCrcValid());
        header.UpdateCrc();
        Assert.True(header.ReadOnly.IsCrcValid());
        Assert.Equal(Crc32C.Compute(batch.AsSpan(21)), header.Crc);
        Assert.True(new RecordBatch(batch).IsCrcValid());
    }

    [Fact]
    public void APartialHeaderServesItsFirstFieldsAndDeclaresNoSizeBelowTwelveBytes()
    {
        var batch = Built();
        var first12 = new RecordBatchHeader(batch.AsSpan(0, 12));
        Assert.Equal(0x0102_0304_0506_0708, first12.BaseOffset);
        Assert.Equal(batch.Length, first12.TotalSize);
        Assert.Equal(-1, RecordBatchHeader.DeclaredSize(batch.AsSpan(0, 11)));
        Assert.Equal(-1, RecordBatch.DeclaredSize(batch.AsSpan(0, 11)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new RecordBatchHeader(batch.AsSpan(0, 12)).ProducerId);
    }
}
