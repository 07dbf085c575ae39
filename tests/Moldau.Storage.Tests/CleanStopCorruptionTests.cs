using System.Buffers.Binary;
using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// Corruption found where the clean-shutdown marker promised none is reported with the file and
/// position, and the offsets that were there are never handed out again.
/// </summary>
public sealed class CleanStopCorruptionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-corrupt-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private PartitionLog Open(bool clean, long recoveryPoint = 0) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 100_000, IndexIntervalBytes = 100, SyncBeforeAck = true, CleanShutdown = clean, RecoveryPoint = recoveryPoint }, TimeProvider.System);

    private static byte[] Batch(int i) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes($"record-{i}-" + new string('r', 60)), 1000 + i), new(null, Encoding.UTF8.GetBytes($"second-{i}"), 1000 + i)]);

    /// <summary>Ten batches of two records, closed cleanly; returns the log end (20).</summary>
    private long FillAndCloseCleanly()
    {
        using var log = Open(clean: false);
        for (var i = 0; i < 10; i++)
        {
            log.Append(Batch(i), 0);
        }

        log.Flush();
        return log.LogEndOffset;
    }

    private string Segment() => Directory.GetFiles(_dir, "*.log").Single();

    [Fact]
    public void ASegmentOfGarbageAfterACleanStopIsReportedAndItsOffsetsAreNotReused()
    {
        var end = FillAndCloseCleanly();
        var path = Segment();
        var garbage = new byte[new FileInfo(path).Length];
        new Random(7).NextBytes(garbage);
        File.WriteAllBytes(path, garbage);

        using var log = Open(clean: true);
        Assert.Contains($"{path} is corrupt at position 0", log.CorruptionAfterCleanStop, StringComparison.Ordinal);
        Assert.True(log.RecoveryLostRecords);
        Assert.Equal(end, log.LogEndOffset);
        Assert.Equal(end, log.Append(Batch(10), 0).BaseOffset);
        var read = log.Read(0, 1 << 20, minOneBatch: true, maxOffset: long.MaxValue);
        Assert.Equal(end, BinaryPrimitives.ReadInt64BigEndian(read.Span));
    }

    [Fact]
    public void ADamagedLastBatchAfterACleanStopIsCutReportedAndItsOffsetsAreNotReused()
    {
        var end = FillAndCloseCleanly();
        var path = Segment();
        var bytes = File.ReadAllBytes(path);
        var lastBatch = bytes.Length - Batch(9).Length;
        bytes[^3] ^= 0x55; // inside the last record: the header still looks fine
        File.WriteAllBytes(path, bytes);

        using var log = Open(clean: true);
        Assert.Contains($"{path} is corrupt at position {lastBatch}", log.CorruptionAfterCleanStop, StringComparison.Ordinal);
        Assert.True(log.RecoveryLostRecords);
        Assert.Equal(end, log.LogEndOffset);

        // Everything below the high watermark can be read, and passes its CRC.
        var read = log.Read(0, 1 << 20, minOneBatch: true, maxOffset: log.HighWatermark).ToArray();
        var batches = 0;
        for (var at = 0; at < read.Length; at += (int)RecordBatch.DeclaredSize(read.AsSpan(at)))
        {
            var batch = read.AsSpan(at, (int)RecordBatch.DeclaredSize(read.AsSpan(at)));
            Assert.Equal(BinaryPrimitives.ReadUInt32BigEndian(batch[RecordBatch.CrcOffset..]), Crc32C.Compute(batch[RecordBatch.AttributesOffset..]));
            batches++;
        }

        Assert.Equal(9, batches);
        Assert.Equal(end, log.Append(Batch(10), 0).BaseOffset);
    }

    [Fact]
    public void AnIntactLogAfterACleanStopReportsNothing()
    {
        var end = FillAndCloseCleanly();
        using var log = Open(clean: true);
        Assert.Null(log.CorruptionAfterCleanStop);
        Assert.False(log.RecoveryLostRecords);
        Assert.Equal(end, log.LogEndOffset);
    }

    [Fact]
    public void SegmentsDroppedAfterATornOneStillProveTheirOffsets()
    {
        using (var log = PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 400, IndexIntervalBytes = 100, SyncBeforeAck = true }, TimeProvider.System))
        {
            for (var i = 0; i < 10; i++)
            {
                log.Append(Batch(i), 0);
            }
        }

        var segments = Directory.GetFiles(_dir, "*.log").Order(StringComparer.Ordinal).ToArray();
        Assert.True(segments.Length >= 3);
        var lastBase = long.Parse(Path.GetFileNameWithoutExtension(segments[^1]), System.Globalization.CultureInfo.InvariantCulture);
        var first = File.ReadAllBytes(segments[0]);
        first[^1] ^= 0xFF;
        File.WriteAllBytes(segments[0], first);
        foreach (var snapshot in Directory.GetFiles(_dir, "*.snapshot"))
        {
            File.Delete(snapshot);
        }

        using var reopened = Open(clean: false);
        Assert.True(reopened.RecoveryLostRecords);
        Assert.Null(reopened.CorruptionAfterCleanStop); // no marker promised anything
        Assert.True(reopened.LogEndOffset >= lastBase, $"log end {reopened.LogEndOffset} below the dropped segment's base {lastBase}");
    }
}
