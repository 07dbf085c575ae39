using System.Buffers.Binary;
using Moldau.Protocol.Records;
using Moldau.Storage.Metadata;

namespace Moldau.Storage.Tests;

/// <summary>The metadata log reader stops at the first batch it can't read, says where, and the cut makes that the end.</summary>
public sealed class MetadataLogCorruptionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-metadata-" + Guid.NewGuid().ToString("N")[..10]);

    public MetadataLogCorruptionTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Segment(long baseOffset) => Path.Combine(_dir, $"{baseOffset:D20}.log");

    private static byte[] Data(long offset, params (short Type, byte[] Body)[] records) =>
        RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(null, MetadataLogReader.Frame(r.Type, 0, r.Body), 1)).ToList(), baseOffset: offset);

    [Fact]
    public void ZerosAfterTheLastBatchAreNotCorruption()
    {
        var good = Data(0, (10, [1]), (11, [2]));
        File.WriteAllBytes(Segment(0), [.. good, .. new byte[4096 - good.Length]]);
        var contents = MetadataLogReader.Read(_dir);
        Assert.Equal(2, contents.Records.Count);
        Assert.Null(contents.Corruption);
    }

    [Fact]
    public void GarbageAfterTheLastBatchIsReportedAtItsPositionAndCut()
    {
        var good = Data(0, (10, [1]), (11, [2]));
        File.WriteAllBytes(Segment(0), [.. good, 7, 7, 7, 7, 7, 7, 7]);
        File.WriteAllBytes(Segment(5), Data(5, (12, [3])));
        var contents = MetadataLogReader.Read(_dir);
        Assert.Equal([10, 11], contents.Records.Select(r => (int)r.RecordType));
        var corruption = Assert.IsType<MetadataLogCorruption>(contents.Corruption);
        Assert.Equal((Segment(0), good.Length, 2L), (corruption.File, corruption.Position, corruption.Offset));

        MetadataLogReader.Cut(corruption);
        Assert.Equal(good, File.ReadAllBytes(Segment(0)));
        Assert.False(File.Exists(Segment(5)));
        Assert.Null(MetadataLogReader.Read(_dir).Corruption);
    }

    [Fact]
    public void ABatchWithAValidCrcWhoseRecordsDoNotParseIsDroppedWhole()
    {
        var first = Data(0, (10, [1]));
        var second = Data(1, (11, [2]), (12, [3]));

        // Make the second record's length varint claim far more than the batch holds, then fix the CRC.
        var recordsStart = RecordBatch.HeaderSize;
        var firstRecordLength = second[recordsStart] >> 1; // a small zigzag varint
        second[recordsStart + 1 + firstRecordLength] = 0x7e;
        BinaryPrimitives.WriteUInt32BigEndian(second.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(second.AsSpan(RecordBatch.AttributesOffset)));
        File.WriteAllBytes(Segment(0), [.. first, .. second]);

        var contents = MetadataLogReader.Read(_dir);
        Assert.Equal([10], contents.Records.Select(r => (int)r.RecordType));
        var corruption = Assert.IsType<MetadataLogCorruption>(contents.Corruption);
        Assert.Equal((first.Length, 1L), (corruption.Position, corruption.Offset));
        Assert.Contains("records do not parse", corruption.Reason, StringComparison.Ordinal);
    }
}
