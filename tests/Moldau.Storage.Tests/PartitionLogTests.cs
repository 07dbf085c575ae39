using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Records;
using Moldau.Storage;
using Moldau.Storage.Metadata;

namespace Moldau.Storage.Tests;

public sealed class PartitionLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-log-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Batch(int records, int size = 10, long timestamp = 1000) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, records).Select(i => new RecordToWrite(null, new byte[size], timestamp + i)).ToList());

    private PartitionLog Open(long segmentBytes = 1L << 30, bool syncBeforeAck = false) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = segmentBytes, IndexIntervalBytes = 100, SyncBeforeAck = syncBeforeAck }, TimeProvider.System);

    [Fact]
    public async Task TheHighWatermarkCoversOnlyFsyncedDataAndOneFsyncServesManyWaiters()
    {
        using var log = Open(syncBeforeAck: true);
        var waits = new List<Task>();
        for (var i = 0; i < 50; i++)
        {
            log.Append(Batch(1), 0);
            waits.Add(log.WaitDurableAsync(log.LogEndOffset));
        }

        Assert.True(log.HighWatermark <= log.LogEndOffset);
        await Task.WhenAll(waits).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(50, log.HighWatermark);
        Assert.Equal(50, log.LogEndOffset);
    }

    [Fact]
    public async Task Acks1AppendsAreSyncedWithinTheLingerOrAtOnceWhenSomeoneWaits()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { SyncBeforeAck = true, FlushLinger = TimeSpan.FromSeconds(1) }, clock);

        async Task HighWatermarkReaches(long offset)
        {
            for (var i = 0; i < 500 && log.HighWatermark < offset; i++)
            {
                await Task.Delay(10);
            }

            Assert.Equal(offset, log.HighWatermark);
        }

        // Nobody waits: the fsync lingers until the clock says so.
        log.Append(Batch(1), 0);
        await Task.Delay(100);
        Assert.Equal(0, log.HighWatermark);
        clock.Advance(TimeSpan.FromSeconds(1));
        await HighWatermarkReaches(1);

        // A reader at the high watermark cuts the linger short.
        log.Append(Batch(1), 0);
        await Task.Delay(100);
        Assert.Equal(1, log.HighWatermark);
        log.RequestDurableSoon();
        await HighWatermarkReaches(2);

        // So does an acks=all producer.
        log.Append(Batch(1), 0);
        await log.WaitDurableAsync(3).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(3, log.HighWatermark);
    }

    [Fact]
    public void AppendsGetContiguousOffsetsAndReadBack()
    {
        using var log = Open();
        Assert.Equal(0, log.Append(Batch(3), 0).BaseOffset);
        Assert.Equal(3, log.Append(Batch(2), 0).BaseOffset);
        Assert.Equal(5, log.LogEndOffset);
        var all = log.Read(0, 1 << 20, minOneBatch: true, log.HighWatermark);
        Assert.Equal(Batch(3).Length + Batch(2).Length, all.Length);
        Assert.True(log.Read(5, 1 << 20, minOneBatch: true, log.HighWatermark).IsEmpty);
    }

    [Fact]
    public void SegmentsRollAndReadsCrossThem()
    {
        using (var log = Open(segmentBytes: 300))
        {
            for (var i = 0; i < 20; i++)
            {
                log.Append(Batch(2, 40), 0);
            }
        }

        var files = Directory.GetFiles(_dir, "*.log").Select(Path.GetFileName).Order().ToList();
        Assert.True(files.Count > 5);
        Assert.Equal("00000000000000000000.log", files[0]);
        Assert.All(files, f => Assert.Equal(24, f!.Length));

        using var reopened = Open(segmentBytes: 300);
        Assert.Equal(40, reopened.LogEndOffset);
        for (long offset = 0; offset < 40; offset++)
        {
            var bytes = reopened.Read(offset, 1, minOneBatch: true, reopened.HighWatermark);
            var batch = new RecordBatch(bytes);
            Assert.InRange(offset, batch.BaseOffset, batch.LastOffset);
        }

        Assert.Equal(40, reopened.Append(Batch(1), 0).BaseOffset);
    }

    [Fact]
    public void ATornTailIsCutAtEveryBytePositionOfTheLastBatch()
    {
        using (var log = Open())
        {
            log.Append(Batch(2), 0);
            log.Append(Batch(3), 0);
            log.Append(Batch(4), 0);
        }

        var path = Path.Combine(_dir, "00000000000000000000.log");
        var full = File.ReadAllBytes(path);
        var twoBatches = Batch(2).Length + Batch(3).Length;
        for (var cut = twoBatches; cut < full.Length; cut++)
        {
            File.WriteAllBytes(path, full.AsSpan(0, cut).ToArray());

            // A crash leaves no producer snapshot: one is written only by a clean close, and it names the log end.
            foreach (var snapshot in Directory.GetFiles(_dir, "*.snapshot"))
            {
                File.Delete(snapshot);
            }

            using var log = Open();
            Assert.Equal(5, log.LogEndOffset);
            Assert.Equal(twoBatches, new FileInfo(path).Length);
            Assert.Equal(cut - twoBatches, log.RecoveredTruncatedBytes);
            Assert.Equal(5, log.Append(Batch(1), 0).BaseOffset);
        }
    }

    [Fact]
    public void ACorruptLastBatchIsCutToo()
    {
        using (var log = Open())
        {
            log.Append(Batch(2), 0);
            log.Append(Batch(3), 0);
        }

        var path = Path.Combine(_dir, "00000000000000000000.log");
        var bytes = File.ReadAllBytes(path);
        bytes[^2] ^= 0x55;
        File.WriteAllBytes(path, bytes);
        // A crash leaves no producer snapshot: one is written only by a clean close, and it names the log end.
        foreach (var snapshot in Directory.GetFiles(_dir, "*.snapshot"))
        {
            File.Delete(snapshot);
        }

        using var reopened = Open();
        Assert.Equal(2, reopened.LogEndOffset);
    }

    [Fact]
    public void ReadsHonourLimitsAndTheHighWatermark()
    {
        using var log = Open();
        var big = Batch(5, 200);
        log.Append(big, 0);
        log.Append(Batch(1), 0);
        Assert.Equal(big.Length, log.Read(2, 10, minOneBatch: true, log.HighWatermark).Length);
        Assert.True(log.Read(2, 10, minOneBatch: false, log.HighWatermark).IsEmpty);
        Assert.Equal(big.Length, log.Read(0, 1 << 20, minOneBatch: true, maxOffset: 5).Length);
    }

    [Fact]
    public void MaxTimestampNamesTheFirstRecordHoldingItNotTheLastOfItsBatch()
    {
        using var log = Open();
        Assert.Null(log.FindMaxTimestamp()); // an empty log: ListOffsets answers -1, -1

        // Issue 18's example: timestamps 10000100, 10000400, 10000250 at offsets 0, 1, 2.
        log.Append(RecordBatchBuilder.Build([new(null, [1], 10000100), new(null, [2], 10000400), new(null, [3], 10000250)]), 0);
        Assert.Equal(new OffsetAndTimestamp(1, 10000400), log.FindMaxTimestamp());

        // A later batch that only ties does not win, nor does a later record of the same batch.
        log.Append(RecordBatchBuilder.Build([new(null, [4], 10000400), new(null, [5], 10000400)]), 0);
        Assert.Equal(new OffsetAndTimestamp(1, 10000400), log.FindMaxTimestamp());
        log.Append(RecordBatchBuilder.Build([new(null, [6], 10000300), new(null, [7], 10000500), new(null, [8], 10000500)]), 0);
        Assert.Equal(new OffsetAndTimestamp(6, 10000500), log.FindMaxTimestamp());
    }

    [Fact]
    public void TimestampsAreFound()
    {
        using var log = Open();
        log.Append(Batch(3, timestamp: 100), 0);
        log.Append(Batch(3, timestamp: 500), 0);
        Assert.Equal(3, log.FindOffsetForTimestamp(400)!.Value.Offset);
        Assert.Null(log.FindOffsetForTimestamp(10_000));
        Assert.Equal(new OffsetAndTimestamp(5, 502), log.FindMaxTimestamp());
    }

    [Fact]
    public void LogStartMovesAndWholeSegmentsBelowItGo()
    {
        using var log = Open(segmentBytes: 200);
        for (var i = 0; i < 10; i++)
        {
            log.Append(Batch(1, 100), 0);
        }

        log.AdvanceLogStartOffset(5);
        Assert.Equal(5, log.LogStartOffset);
        Assert.DoesNotContain("00000000000000000000.log", Directory.GetFiles(_dir).Select(Path.GetFileName));
        Assert.Equal(5, new RecordBatch(log.Read(5, 1, true, log.HighWatermark)).BaseOffset);
    }

    [Fact]
    public async Task RetiredSegmentsStayReadableUntilTheDeleteDelayThenGo()
    {
        var clock = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 200, SyncBeforeAck = true, FileDeleteDelay = TimeSpan.FromSeconds(60) }, clock);
        for (var i = 0; i < 10; i++)
        {
            log.Append(Batch(1, 100), 0);
        }

        await log.WaitDurableAsync(log.LogEndOffset).WaitAsync(TimeSpan.FromSeconds(30));
        log.AdvanceLogStartOffset(5);

        // Renamed at once, so a restart would drop them; a flush that still sees them succeeds.
        Assert.DoesNotContain("00000000000000000000.log", Directory.GetFiles(_dir).Select(Path.GetFileName));
        Assert.Contains("00000000000000000000.log.deleted", Directory.GetFiles(_dir).Select(Path.GetFileName));
        log.Append(Batch(1, 100), 0);
        await log.WaitDurableAsync(log.LogEndOffset).WaitAsync(TimeSpan.FromSeconds(30));

        clock.Advance(TimeSpan.FromSeconds(61));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (Directory.GetFiles(_dir, "*.deleted").Length > 0 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(10);
        }

        Assert.Empty(Directory.GetFiles(_dir, "*.deleted"));
        Assert.Equal(5, new RecordBatch(log.Read(5, 1, true, log.HighWatermark)).BaseOffset);
    }

    [Fact]
    public void SegmentsLeftAsDeletedByAStopAreRemovedOnOpen()
    {
        Directory.CreateDirectory(_dir);
        File.WriteAllBytes(Path.Combine(_dir, "00000000000000000000.log.deleted"), Batch(1));
        using var log = Open();
        Assert.Empty(Directory.GetFiles(_dir, "*.deleted"));
        Assert.Equal(0, log.LogEndOffset);
    }

    [Fact]
    public void PartitionMetadataIsKafkasText()
    {
        Directory.CreateDirectory(_dir);
        var id = Uuid.NewRandom();
        PartitionMetadataFile.Write(_dir, id);
        Assert.Equal($"version: 0\ntopic_id: {id}\n", File.ReadAllText(Path.Combine(_dir, "partition.metadata")));
        Assert.Equal(id, PartitionMetadataFile.Read(_dir));
    }

    [Fact]
    public void TheMetadataLogKeepsFramedRecordsAndIgnoresATornTail()
    {
        using (var writer = new MetadataLogWriter(_dir, TimeProvider.System))
        {
            writer.Append([(2, 0, [1, 2]), (3, 1, [3])]);
            writer.Append([(9, 0, [4])]);
        }

        var path = Directory.GetFiles(_dir, "*.log").Single();
        File.AppendAllText(path, "torn");
        var records = MetadataLogReader.ReadAll(_dir).ToList();
        Assert.Equal([(2, 0), (3, 1), (9, 0)], records.Select(r => ((int)r.RecordType, (int)r.RecordVersion)));
        Assert.Equal(new byte[] { 3 }, records[1].Body.ToArray());
        Assert.Equal([0L, 1L, 2L], records.Select(r => r.Offset));
        Assert.Empty(MetadataLogReader.ReadAll(Path.Combine(_dir, "missing")));
    }

    [Fact]
    public void ProducerStateIsRebuiltOnOpen()
    {
        var first = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("a"), 1)], producerId: 7, producerEpoch: 0, baseSequence: 0);
        using (var log = Open())
        {
            Assert.Equal(AppendStatus.Appended, log.Append(first.ToArray(), 0).Status);
        }

        using var reopened = Open();
        Assert.Equal(new AppendResult(AppendStatus.Duplicate, 0) { LastOffset = 0, LogStartOffset = 0 }, reopened.Append(first.ToArray(), 0));
        var gap = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("b"), 1)], producerId: 7, producerEpoch: 0, baseSequence: 5);
        Assert.Equal(AppendStatus.OutOfOrderSequence, reopened.Append(gap, 0).Status);
    }
}
