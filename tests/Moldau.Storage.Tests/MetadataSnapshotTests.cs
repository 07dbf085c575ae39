using System.Buffers.Binary;
using Moldau.Protocol.Records;
using Moldau.Storage.Metadata;

namespace Moldau.Storage.Tests;

/// <summary>Kafka's KRaft snapshots (<c>&lt;end offset&gt;-&lt;epoch&gt;.checkpoint</c>) in the metadata log directory.</summary>
public sealed class MetadataSnapshotTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-snapshot-" + Guid.NewGuid().ToString("N")[..10]);

    public MetadataSnapshotTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A control batch with one record whose key is (version 0, <paramref name="type"/>).</summary>
    private static byte[] Control(short type, long offset)
    {
        var key = new byte[4];
        BinaryPrimitives.WriteInt16BigEndian(key.AsSpan(2), type);
        return RecordBatchBuilder.Build([new(key, [0, 0, 0], 1)], baseOffset: offset, attributes: 0x20);
    }

    private static byte[] Data(long offset, params (short Type, byte[] Body)[] records) =>
        RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(null, MetadataLogReader.Frame(r.Type, 0, r.Body), 1)).ToList(), baseOffset: offset);

    /// <summary>A snapshot as Kafka writes it: header control batch, data batches, footer control batch.</summary>
    private void WriteSnapshot(long endOffset, bool withFooter = true, params (short Type, byte[] Body)[] records)
    {
        var parts = new List<byte[]> { Control(3, 0), Data(1, records) };
        if (withFooter)
        {
            parts.Add(Control(4, 1 + records.Length));
        }

        File.WriteAllBytes(Path.Combine(_dir, $"{endOffset:D20}-{7:D10}.checkpoint"), [.. parts.SelectMany(p => p)]);
    }

    [Fact]
    public void TheLatestWholeSnapshotComesFirstThenTheSegmentRecordsFromItsEndOffset()
    {
        // Segment records 0-2 are covered by the snapshot ending at offset 2; record 2 is not.
        File.WriteAllBytes(Path.Combine(_dir, "00000000000000000000.log"), [.. Data(0, (10, [1]), (11, [2])), .. Data(2, (12, [3]))]);
        WriteSnapshot(2, true, (20, [9]), (21, [8]));
        WriteSnapshot(1, true, (30, [7]));

        var records = MetadataLogReader.ReadAll(_dir).Select(r => ((int)r.RecordType, r.Body.ToArray()[0])).ToList();
        Assert.Equal([(20, (byte)9), (21, (byte)8), (12, (byte)3)], records);
        Assert.Equal(2, MetadataLogReader.SnapshotEndOffset(_dir));
    }

    [Fact]
    public void AnIncompleteSnapshotIsPassedOverForAnOlderOne()
    {
        WriteSnapshot(5, true, (20, [1]));
        WriteSnapshot(9, false, (21, [2])); // no footer: Kafka crashed while writing it
        var corrupt = Path.Combine(_dir, $"{12:D20}-{7:D10}.checkpoint");
        WriteSnapshot(12, true, (22, [3]));
        var bytes = File.ReadAllBytes(corrupt);
        bytes[^5] ^= 0xFF; // a bad CRC in the footer batch
        File.WriteAllBytes(corrupt, bytes);

        Assert.Equal([20], MetadataLogReader.ReadAll(_dir).Select(r => (int)r.RecordType));
        Assert.Equal(5, MetadataLogReader.SnapshotEndOffset(_dir));
    }

    [Fact]
    public void TheWriterGoesOnAtTheSnapshotEndWhenKafkaDeletedTheSegments()
    {
        WriteSnapshot(40, true, (20, [1]));
        using (var writer = new MetadataLogWriter(_dir, TimeProvider.System))
        {
            Assert.Equal(40, writer.Append([(21, 0, [2])]));
        }

        var records = MetadataLogReader.ReadAll(_dir).ToList();
        Assert.Equal([20, 21], records.Select(r => (int)r.RecordType));
        Assert.Equal(40, records[1].Offset);
        Assert.True(File.Exists(Path.Combine(_dir, "00000000000000000040.log")));
    }
}
