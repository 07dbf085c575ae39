using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>After an unclean stop, only the segments past the recovery point are read through.</summary>
public sealed class RecoveryPointTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-recovery-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private PartitionLog Open(long recoveryPoint) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 600, IndexIntervalBytes = 100, SyncBeforeAck = true, RecoveryPoint = recoveryPoint }, TimeProvider.System);

    private static byte[] Batch(int sequence) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(new string('r', 150)), 1000 + sequence)], producerId: 9, producerEpoch: 0, baseSequence: sequence);

    /// <summary>Twenty batches over several segments, synced; returns the recovery point then.</summary>
    private long Fill()
    {
        var log = Open(0);
        for (var i = 0; i < 20; i++)
        {
            log.Append(Batch(i), 0);
        }

        log.Flush();
        var point = log.RecoveryPoint;
        log.Dispose();
        return point;
    }

    private string[] Segments() => [.. Directory.GetFiles(_dir, "*.log").Order(StringComparer.Ordinal)];

    [Fact]
    public void SegmentsBelowTheRecoveryPointAreTrustedAndTheRestIsReadThrough()
    {
        var point = Fill();
        Assert.Equal(20, point);
        var segments = Segments();
        Assert.True(segments.Length >= 4);

        // A damaged byte in the first segment (below the point) and a torn tail on the last.
        var first = File.ReadAllBytes(segments[0]);
        first[100] ^= 0xFF;
        File.WriteAllBytes(segments[0], first);
        File.AppendAllText(segments[^1], "torn");

        using (var log = Open(point))
        {
            Assert.Equal(20, log.LogEndOffset); // the first segment was not read through
            Assert.Equal(4, log.RecoveredTruncatedBytes); // the last one was
            Assert.Equal(20, log.RecoveryPoint);

            // The producer state covers the trusted segments too: a retry of the last batch is a duplicate.
            Assert.Equal(new AppendResult(AppendStatus.Duplicate, 19) { LastOffset = 19, LogStartOffset = 0 }, log.Append(Batch(19), 0));
            Assert.Equal(AppendStatus.OutOfOrderSequence, log.Append(Batch(25), 0).Status);
        }
    }

    [Fact]
    public void WithoutARecoveryPointEverySegmentIsReadThrough()
    {
        Fill();
        var segments = Segments();
        var first = File.ReadAllBytes(segments[0]);
        first[100] ^= 0xFF;
        File.WriteAllBytes(segments[0], first);

        using var log = Open(0);
        Assert.True(log.RecoveredTruncatedBytes > 0); // the damaged first batch cut everything after it
        Assert.True(log.RecoveryLostRecords);

        // The offsets cut are not handed out again: the log goes on from what the files proved.
        Assert.Equal(20, log.LogEndOffset);
        Assert.Equal(20, log.Append(RecordBatchBuilder.Build([new(null, [1], 1)]), 0).BaseOffset);
    }

    [Fact]
    public void TheCleanedPointFromTheCheckpointMakesTheCleanedSegmentsCountAsClean()
    {
        Fill();
        var bases = Segments().Select(f => long.Parse(Path.GetFileNameWithoutExtension(f), System.Globalization.CultureInfo.InvariantCulture)).ToList();
        using (var fresh = PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 600, CleanShutdown = true }, TimeProvider.System))
        {
            Assert.Equal(0, fresh.CleanedUpTo);
            Assert.Equal(1.0, fresh.DirtyRatio);
        }

        // Everything below the last closed segment's base was cleaned: only that segment is dirty.
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 600, CleanShutdown = true, CleanedUpTo = bases[^2] }, TimeProvider.System);
        Assert.Equal(bases[^2], log.CleanedUpTo);
        Assert.InRange(log.DirtyRatio, 0.01, 0.5);
    }

    [Fact]
    public void ASegmentTailLostBeforeASurvivingEmptySegmentCountsAsLostAndOffsetsAreNotReused()
    {
        Fill();
        var segments = Segments();
        var batchSize = Batch(0).Length;

        // The power went after the next segment's directory entry reached the disk but before the
        // tail of the one before it (and any data of the last) did: a cut at a batch boundary,
        // which no CRC can see, followed by an empty file.
        File.WriteAllBytes(segments[^1], []);
        using (var handle = File.OpenHandle(segments[^2], FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.SetLength(handle, RandomAccess.GetLength(handle) - batchSize);
        }

        var lastBase = long.Parse(Path.GetFileNameWithoutExtension(segments[^1]), System.Globalization.CultureInfo.InvariantCulture);
        // A crash leaves no producer snapshot: one is written only by a clean close, and it names the log end.
        foreach (var snapshot in Directory.GetFiles(_dir, "*.snapshot"))
        {
            File.Delete(snapshot);
        }

        using var log = Open(0);
        Assert.Equal(0, log.RecoveredTruncatedBytes);
        Assert.True(log.RecoveryLostRecords);
        Assert.Equal(lastBase, log.LogEndOffset);

        // The lost offset is not handed out again; a reader at it steps over the hole.
        var next = RecordBatchBuilder.Build([new(null, [1], 1)]);
        Assert.Equal(lastBase, log.Append(next, 0).BaseOffset);
        Assert.Equal(lastBase, new RecordBatch(log.Read(lastBase - 1, 1, true, log.LogEndOffset)).BaseOffset);
    }

    [Fact]
    public void ACleanCutLeavesNothingLost()
    {
        Fill();
        using var log = Open(0);
        Assert.False(log.RecoveryLostRecords);
        Assert.Equal(20, log.LogEndOffset);
    }
}
