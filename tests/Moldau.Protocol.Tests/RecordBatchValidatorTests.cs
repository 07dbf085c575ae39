using System.Buffers.Binary;
using Moldau.Protocol;
using Moldau.Protocol.Records;
using Moldau.Tests.Shared;
using Xunit;

namespace Moldau.Protocol.Tests;

public sealed class RecordBatchValidatorTests
{
    private static readonly RecordChecks Plain = new("t", 0, RequireKeys: false);

    public static TheoryData<string> HostileNames() => [.. HostileBatches.All().Select(c => c.Name)];

    [Theory]
    [MemberData(nameof(HostileNames))]
    public void EachMalformedShapeIsRefusedWithKafkasCode(string name)
    {
        var (_, batch, expected) = HostileBatches.All().Single(c => c.Name == name);
        var result = RecordBatchValidator.Validate(batch, Plain);
        Assert.Equal(expected, result.Error);
        Assert.False(string.IsNullOrEmpty(result.Message));
        Assert.Null(result.RecordErrors); // malformed bytes fail the whole batch, with no index (as in Kafka)
    }

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void WellFormedBatchesOfEveryCodecPass(CompressionType codec)
    {
        var batch = RecordBatchBuilder.Build(
            [.. Enumerable.Range(0, 2000).Select(i => new RecordToWrite(i % 3 == 0 ? null : [(byte)i], new byte[i % 300], 1000 + i, i % 2 == 0 ? [("h", [1]), ("n", null)] : null))],
            compression: codec);
        Assert.Equal(BatchValidation.Valid, RecordBatchValidator.Validate(batch, Plain));
    }

    [Fact]
    public void XerialSnappyFromJavaClientsPasses()
    {
        // RecordCompression.Compress writes the xerial framing, in 32 KiB blocks: this crosses several.
        var batch = RecordBatchBuilder.Build([.. Enumerable.Range(0, 100).Select(i => new RecordToWrite([(byte)i], new byte[1000], 1000))], compression: CompressionType.Snappy);
        Assert.True(SnappyDecompressionStream.IsXerial(new RecordBatch(batch).RecordsSection.Span));
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(batch, Plain).Error);
    }

    [Fact]
    public void BareSnappyFromLibrdkafkaPasses()
    {
        byte[] section = [.. HostileBatches.Rec(0, [1], new byte[5000]), .. HostileBatches.Rec(1, [2], [2])];
        var batch = HostileBatches.Batch(Snappier.Snappy.CompressToArray(section), 2, 1, CompressionType.Snappy);
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(batch, Plain).Error);
    }

    [Theory]
    [InlineData(CompressionType.None)]
    [InlineData(CompressionType.Zstd)]
    public void NullKeysOnACompactedTopicAreNamedByIndex(CompressionType codec)
    {
        var result = RecordBatchValidator.Validate(HostileBatches.Valid(5, codec, 1, 3), new RecordChecks("c", 2, RequireKeys: true));
        Assert.Equal(ErrorCode.InvalidRecord, result.Error);
        Assert.Equal([1, 3], result.RecordErrors!.Select(e => e.BatchIndex));
        Assert.All(result.RecordErrors!, e => Assert.Equal("Compacted topic cannot accept message without key in topic partition c-2.", e.Message));
        Assert.StartsWith("One or more records have been rejected due to 2 record errors in total", result.Message);
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(HostileBatches.Valid(5, codec, 1, 3), Plain).Error);
    }

    [Fact]
    public void TimestampsOutOfRangeAreNamedByIndexAndWinOverKeyErrors()
    {
        // Records stamped 1_700_000_000_000 + i; the clock 10 s later; at most 5 s back allowed.
        var checks = new RecordChecks("t", 0, RequireKeys: true, NowMs: 1_700_000_010_000, TimestampBeforeMaxMs: 5_000, TimestampAfterMaxMs: 0);
        var batch = HostileBatches.Valid(3, CompressionType.None, 1);
        var result = RecordBatchValidator.Validate(batch, checks);
        Assert.Equal(ErrorCode.InvalidTimestamp, result.Error);
        Assert.Equal("One or more records have been rejected due to invalid timestamp", result.Message);
        Assert.Equal([0, 1, 2], result.RecordErrors!.Select(e => e.BatchIndex));
        Assert.StartsWith("Timestamp 1700000000000 of message with offset 0 is out of range. The timestamp should be within [1700000005000, 1700000010000]", result.RecordErrors![0].Message);
        Assert.StartsWith("Compacted topic", result.RecordErrors![1].Message); // one error per record, the key's first
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(batch, checks with { RequireKeys = false, TimestampBeforeMaxMs = 60_000 }).Error);
    }

    /// <summary>
    /// Only the broker stamps LogAppendTime: a producer's batch claiming it is refused per record
    /// where Kafka's LogValidator.validateTimestamp refuses it, on a LogAppendTime topic, or on a
    /// CreateTime topic when the records' timestamp (then the batch's max timestamp) is -1.
    /// </summary>
    [Fact]
    public void ABatchClaimingLogAppendTimeIsRefusedPerRecord()
    {
        var plain = HostileBatches.Valid(3);
        var stamped = ClaimLogAppendTime(HostileBatches.Valid(3), 1_700_000_000_002);
        var appendTimeTopic = new RecordChecks("l", 0, RequireKeys: false, LogAppendTimeTopic: true);

        var result = RecordBatchValidator.Validate(stamped, appendTimeTopic);
        Assert.Equal(ErrorCode.InvalidTimestamp, result.Error);
        Assert.Equal("One or more records have been rejected due to invalid timestamp", result.Message);
        Assert.Equal([0, 1, 2], result.RecordErrors!.Select(e => e.BatchIndex));
        Assert.Equal("Invalid timestamp type in message DefaultRecord(offset=1, timestamp=1700000000002, key=5 bytes, value=7 bytes). Producer should not set timestamp type to LogAppendTime.", result.RecordErrors![1].Message);
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(plain, appendTimeTopic).Error);

        Assert.Equal(ErrorCode.InvalidTimestamp, RecordBatchValidator.Validate(ClaimLogAppendTime(HostileBatches.Valid(3), -1), Plain).Error);
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(stamped, Plain).Error);
    }

    private static byte[] ClaimLogAppendTime(byte[] batch, long maxTimestamp)
    {
        var s = batch.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(s[RecordBatch.AttributesOffset..], (short)(BinaryPrimitives.ReadInt16BigEndian(s[RecordBatch.AttributesOffset..]) | 0x08));
        BinaryPrimitives.WriteInt64BigEndian(s[35..], maxTimestamp);
        BinaryPrimitives.WriteUInt32BigEndian(s[RecordBatch.CrcOffset..], Crc32C.Compute(s[RecordBatch.AttributesOffset..]));
        return batch;
    }

    [Fact]
    public void ALowerLimitRefusesWhatTheDefaultAccepts()
    {
        var batch = RecordBatchBuilder.Build([new RecordToWrite([1], new byte[100_000], 1000)], compression: CompressionType.Lz4);
        Assert.Equal(ErrorCode.None, RecordBatchValidator.Validate(batch, Plain).Error);
        Assert.Equal(ErrorCode.MessageTooLarge, RecordBatchValidator.Validate(batch, Plain with { MaxDecompressedBytes = 50_000 }).Error);
    }

    [Fact]
    public void BoundedDecompressStopsAtTheLimit()
    {
        var section = new RecordBatch(HostileBatches.All().Single(c => c.Name == "zstd bomb: 1 GiB").Batch).RecordsSection;
        Assert.Throws<RecordsTooLargeException>(() => RecordCompression.Decompress(CompressionType.Zstd, section));
        var before = GC.GetAllocatedBytesForCurrentThread();
        using (var stream = RecordCompression.OpenDecompressor(CompressionType.Zstd, section))
        {
            using var scanner = new RecordScanner(stream);
            var refused = false;
            try
            {
                scanner.MoveNext(out _);
            }
            catch (RecordsTooLargeException)
            {
                refused = true;
            }

            Assert.True(refused);
        }

        // The scanner slides a 64 KiB window over what inflates: far less than the 64 MiB it read.
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 8 << 20, $"{GC.GetAllocatedBytesForCurrentThread() - before} bytes allocated");
    }

    [Fact]
    public void ValidatingAnUncompressedBatchAllocatesNothing()
    {
        var batch = HostileBatches.Valid(100);
        RecordBatchValidator.Validate(batch, Plain);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            RecordBatchValidator.Validate(batch, Plain);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
