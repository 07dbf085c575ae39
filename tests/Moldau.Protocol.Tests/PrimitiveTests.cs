using Moldau.Protocol;

namespace Moldau.Protocol.Tests;

public sealed class PrimitiveTests
{
    [Theory]
    [InlineData(0u, new byte[] { 0x00 })]
    [InlineData(1u, new byte[] { 0x01 })]
    [InlineData(127u, new byte[] { 0x7F })]
    [InlineData(128u, new byte[] { 0x80, 0x01 })]
    [InlineData(300u, new byte[] { 0xAC, 0x02 })]
    [InlineData(16383u, new byte[] { 0xFF, 0x7F })]
    [InlineData(16384u, new byte[] { 0x80, 0x80, 0x01 })]
    [InlineData(uint.MaxValue, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F })]
    public void UnsignedVarIntMatchesKafka(uint value, byte[] expected)
    {
        var buffer = new byte[KafkaSize.UnsignedVarInt(value)];
        var writer = new KafkaWriter(buffer);
        writer.WriteUnsignedVarInt(value);
        Assert.Equal(expected, buffer);
        var reader = new KafkaReader(buffer);
        Assert.Equal(value, reader.ReadUnsignedVarInt());
    }

    [Theory]
    [InlineData(0, new byte[] { 0x00 })]
    [InlineData(-1, new byte[] { 0x01 })]
    [InlineData(1, new byte[] { 0x02 })]
    [InlineData(-64, new byte[] { 0x7F })]
    [InlineData(64, new byte[] { 0x80, 0x01 })]
    [InlineData(int.MaxValue, new byte[] { 0xFE, 0xFF, 0xFF, 0xFF, 0x0F })]
    [InlineData(int.MinValue, new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x0F })]
    public void ZigZagVarIntMatchesKafka(int value, byte[] expected)
    {
        var buffer = new byte[KafkaSize.VarInt(value)];
        var writer = new KafkaWriter(buffer);
        writer.WriteVarInt(value);
        Assert.Equal(expected, buffer);
        var reader = new KafkaReader(buffer);
        Assert.Equal(value, reader.ReadVarInt());
    }

    [Theory]
    [InlineData(0L)]
    [InlineData(-1L)]
    [InlineData(long.MaxValue)]
    [InlineData(long.MinValue)]
    [InlineData(1L << 40)]
    public void VarLongRoundTrips(long value)
    {
        var buffer = new byte[KafkaSize.VarLong(value)];
        var writer = new KafkaWriter(buffer);
        writer.WriteVarLong(value);
        var reader = new KafkaReader(buffer);
        Assert.Equal(value, reader.ReadVarLong());
        Assert.Equal(0, reader.Remaining);
    }

    [Fact]
    public void OverlongVarIntIsRejected()
    {
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0x80, 0x80, 0x80, 0x80, 0x80, 0x01 }).ReadUnsignedVarInt());
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x1F }).ReadUnsignedVarInt());
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0x80 }).ReadUnsignedVarInt());
    }

    [Fact]
    public void HostileLengthsAreRejectedBeforeAllocating()
    {
        // An array claiming 2^31-1 elements in 4 bytes, a string longer than the buffer.
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0x7F, 0xFF, 0xFF, 0xFF }).ReadArrayLength(false));
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0x00, 0x10, 0x41 }).ReadString(false));
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0xFF, 0xFF, 0xFF, 0x7F }).ReadBytesLength(false));
        Assert.Throws<KafkaProtocolException>(() => new KafkaReader(new byte[] { 0x05 }).ReadTaggedFieldCount());
    }

    [Fact]
    public void CompactNullAndEmptyDiffer()
    {
        var reader = new KafkaReader(new byte[] { 0x00, 0x01, 0x02, 0x41 });
        Assert.Null(reader.ReadNullableString(compact: true));
        Assert.Equal(string.Empty, reader.ReadNullableString(compact: true));
        Assert.Equal("A", reader.ReadString(compact: true));
    }

    [Fact]
    public void UnknownTaggedFieldsAreKeptAndWrittenBack()
    {
        // ApiVersionsRequest v3: two compact strings, then tags: tag 7 (3 bytes), tag 9 (0 bytes).
        byte[] wire = [0x02, 0x61, 0x02, 0x62, 0x02, 0x07, 0x03, 0x01, 0x02, 0x03, 0x09, 0x00];
        var message = KafkaMessageExtensions.Decode<Messages.ApiVersionsRequest>(wire, 3);
        Assert.Equal("a", message.ClientSoftwareName);
        Assert.Equal(2, message.UnknownTaggedFields!.Count);
        Assert.Equal(7, message.UnknownTaggedFields[0].Tag);
        Assert.Equal(new byte[] { 1, 2, 3 }, message.UnknownTaggedFields[0].Data);
        Assert.Equal(wire, message.ToBytes(3));
    }

    [Fact]
    public void KnownTaggedFieldsAreReadAndWrittenOnlyWhenNotDefault()
    {
        var response = new Messages.ApiVersionsResponse { FinalizedFeaturesEpoch = 5 };
        var bytes = response.ToBytes(3);
        var back = KafkaMessageExtensions.Decode<Messages.ApiVersionsResponse>(bytes, 3);
        Assert.Equal(5, back.FinalizedFeaturesEpoch);
        var plain = new Messages.ApiVersionsResponse().ToBytes(3);
        Assert.Equal(bytes.Length - 1 - 1 - 8, plain.Length); // tag, size, int64 gone
    }

    [Fact]
    public void UuidStringFormIsKafkas()
    {
        var id = Uuid.Parse("AAAAAAAAAAAAAAAAAAAAAA");
        Assert.True(id.IsZero);
        var random = Uuid.NewRandom();
        Assert.Equal(random, Uuid.Parse(random.ToString()));
        Assert.Equal(22, random.ToString().Length);
    }

    [Fact]
    public void RequestHeaderV2KeepsClassicClientIdAndTags()
    {
        var header = new RequestHeader { ApiKey = 18, ApiVersion = 3, CorrelationId = 7, ClientId = "kcat" };
        Assert.Equal(2, RequestHeader.VersionFor(18, 3));
        Assert.Equal(1, RequestHeader.VersionFor(18, 2));
        var bytes = new byte[header.Size(2)];
        var writer = new KafkaWriter(bytes);
        header.Write(ref writer, 2);
        Assert.Equal(new byte[] { 0, 18, 0, 3, 0, 0, 0, 7, 0, 4, (byte)'k', (byte)'c', (byte)'a', (byte)'t', 0 }, bytes);
        var back = new RequestHeader();
        var reader = new KafkaReader(bytes);
        back.Read(ref reader, 2);
        Assert.Equal("kcat", back.ClientId);
        Assert.Equal(7, back.CorrelationId);
    }

    [Fact]
    public void ApiVersionsResponseHeaderIsAlwaysV0()
    {
        var spec = ApiSpecs.Find((short)ApiKey.ApiVersions)!;
        Assert.Equal(0, spec.ResponseHeaderVersion(3));
        Assert.Equal(1, ApiSpecs.Find((short)ApiKey.Metadata)!.ResponseHeaderVersion(12));
        Assert.Equal(0, ApiSpecs.Find((short)ApiKey.Metadata)!.ResponseHeaderVersion(8));
    }
}

public sealed class CompressionTests
{
    [Theory]
    [InlineData(Records.CompressionType.None)]
    [InlineData(Records.CompressionType.Gzip)]
    [InlineData(Records.CompressionType.Snappy)]
    [InlineData(Records.CompressionType.Lz4)]
    [InlineData(Records.CompressionType.Zstd)]
    public void CompressedBatchesRoundTripTheirRecords(Records.CompressionType codec)
    {
        var records = Enumerable.Range(0, 500)
            .Select(i => new Records.RecordToWrite(i % 3 == 0 ? null : System.Text.Encoding.UTF8.GetBytes($"key-{i}"), i % 7 == 0 ? null : new byte[i % 50], 1000 + i, [("h", [(byte)i])]))
            .ToList();
        var bytes = Records.RecordBatchBuilder.Build(records, compression: codec);
        var batch = new Records.RecordBatch(bytes);
        Assert.Equal(codec, batch.Compression);
        Assert.True(batch.IsCrcValid());
        Assert.Equal(ErrorCode.None, Records.RecordBatchValidator.ValidateProduce(bytes));
        var i = 0;
        foreach (var r in batch.GetRecords())
        {
            Assert.Equal(i, r.OffsetDelta);
            Assert.True((records[i].Key is null) == (r.Key is null), $"record {i}: key {r.Key?.Length}");
            Assert.Equal(records[i].Value?.Length ?? -1, r.Value?.Length ?? -1);
            Assert.Equal((byte)i, r.Headers.Single().Value!.Value.Span[0]);
            i++;
        }

        Assert.Equal(500, i);
    }

    [Fact]
    public void CorruptCompressedDataIsAProtocolError()
    {
        var bytes = Records.RecordCompression.Compress(Records.CompressionType.Zstd, new byte[1000]);
        bytes[^3] ^= 0xFF;
        Assert.ThrowsAny<KafkaProtocolException>(() => Records.RecordCompression.Decompress(Records.CompressionType.Zstd, bytes.AsMemory(0, bytes.Length / 2)));
        Assert.ThrowsAny<KafkaProtocolException>(() => Records.RecordCompression.Decompress(Records.CompressionType.Snappy, new byte[] { 0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 50, 1 }));
    }
}
