using System.Text;
using Microsoft.Extensions.Time.Testing;
using Moldau.Protocol.Records;
using Moldau.Storage.Cleaning;

namespace Moldau.Storage.Tests;

/// <summary>Log compaction over real segment files: what survives, where, in which form, and after a crash.</summary>
public sealed class CompactionTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-compact-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly FakeTimeProvider _time = new(Start);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private PartitionLog Open(long segmentBytes = 400) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = segmentBytes, IndexIntervalBytes = 100, SyncBeforeAck = false }, _time);

    private static byte[]? Bytes(string? s) => s is null ? null : Encoding.UTF8.GetBytes(s);

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private static long Append(PartitionLog log, string key, string? value, long timestamp, CompressionType compression = CompressionType.None) =>
        log.Append(RecordBatchBuilder.Build([new(Bytes(key), Bytes(value), timestamp)], compression: compression), 3).BaseOffset;

    private static List<RecordBatch> Batches(PartitionLog log)
    {
        var batches = new List<RecordBatch>();
        var offset = log.LogStartOffset;
        while (offset < log.LogEndOffset)
        {
            var bytes = log.Read(offset, 1 << 20, minOneBatch: true, log.LogEndOffset);
            Assert.False(bytes.IsEmpty, $"nothing read at {offset} of {log.LogEndOffset}");
            var e = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
            while (e.MoveNext())
            {
                var batch = new RecordBatch(bytes.Slice(e.CurrentStart, e.CurrentLength).ToArray());
                Assert.True(batch.IsCrcValid());
                batches.Add(batch);
                offset = batch.LastOffset + 1;
            }

            Assert.Equal(bytes.Length, e.ValidEnd);
        }

        return batches;
    }

    private static List<(long Offset, string? Key, string? Value)> Records(PartitionLog log) =>
        Batches(log).SelectMany(b =>
        {
            var list = new List<(long, string?, string?)>();
            foreach (var r in b.GetRecords())
            {
                list.Add((b.BaseOffset + r.OffsetDelta, r.Key is { } k ? Encoding.UTF8.GetString(k.Span) : null, r.Value is { } v ? Encoding.UTF8.GetString(v.Span) : null));
            }

            return list;
        }).ToList();

    /// <summary>The latest record of each key below <paramref name="activeBase"/>, then every record from it on.</summary>
    private static List<(long, string?, string?)> Expected(List<(long Offset, string? Key, string? Value)> all, long activeBase)
    {
        var closed = all.Where(r => r.Offset < activeBase).ToList();
        var latest = closed.GroupBy(r => r.Key).ToDictionary(g => g.Key!, g => g.Max(r => r.Offset));
        return closed.Where(r => latest[r.Key!] == r.Offset).Concat(all.Where(r => r.Offset >= activeBase)).Select(r => (r.Offset, r.Key, r.Value)).ToList();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AFlushAfterACleanedOrRetiredSegmentWasClosedStillWorks(bool clean)
    {
        // Found by PartitionLogPropertyTests: a rolled segment waits for the next flush to sync its
        // index files; the cleaner or retention closed it first, and every flush after failed.
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 200, IndexIntervalBytes = 100, SyncBeforeAck = false, FileDeleteDelay = TimeSpan.Zero }, _time);
        for (var i = 0; i < 12; i++)
        {
            Append(log, $"k{i % 2}", $"v{i}", Now);
        }

        Assert.True(log.Segments().Count > 2);
        if (clean)
        {
            Assert.True(log.Clean(new CleanerSettings()).SegmentsRewritten > 0);
        }
        else
        {
            log.AdvanceLogStartOffset(log.Segments()[2].BaseOffset);
        }

        log.Flush();
        Assert.Equal(12, log.HighWatermark);
    }

    [Fact]
    public void TheLatestRecordOfEachKeyStaysAtItsOffsetAndTheActiveSegmentIsUntouched()
    {
        using var log = Open();
        for (var i = 0; i < 60; i++)
        {
            Append(log, $"k{i % 5}", $"v{i}", Now);
        }

        var before = Records(log);
        var activeBase = log.Segments()[^1].BaseOffset;
        Assert.True(log.Segments().Count > 4);
        var activePath = Path.Combine(_dir, activeBase.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".log");
        var activeBytes = File.ReadAllBytes(activePath);

        var result = log.Clean(new CleanerSettings());

        Assert.True(result.SegmentsRewritten > 0);
        Assert.True(result.BytesAfter < result.BytesBefore);
        Assert.Equal(Expected(before, activeBase), Records(log));
        Assert.All(Records(log), r => Assert.Equal($"v{r.Offset}", r.Value));
        Assert.Equal(activeBytes, File.ReadAllBytes(activePath));
        Assert.Equal(60, log.LogEndOffset);
        Assert.Null(log.CleanIfDirty(new CleanerSettings()));

        // Appends go on after a pass, at the next offset.
        Assert.Equal(60, Append(log, "k0", "v60", Now));
    }

    [Fact]
    public void APassRunsOnlyOnceTheDirtyRatioIsReached()
    {
        var settings = new CleanerSettings { MinCleanableDirtyRatio = 0.5 };
        using var log = Open(segmentBytes: 200);
        for (var i = 0; i < 30; i++)
        {
            Append(log, $"k{i % 10}", $"v{i}", Now);
        }

        Assert.Equal(1.0, log.DirtyRatio);
        Assert.NotNull(log.CleanIfDirty(settings));
        Assert.Equal(0.0, log.DirtyRatio);

        // One new closed segment against the cleaned ones: below the ratio, no pass.
        var segments = log.Segments().Count;
        while (log.Segments().Count < segments + 1)
        {
            Append(log, "k0", "more", Now);
        }

        Assert.InRange(log.DirtyRatio, 0.01, 0.49);
        Assert.Null(log.CleanIfDirty(settings));
        while (log.DirtyRatio < 0.5)
        {
            Append(log, "k1", "more", Now);
        }

        Assert.NotNull(log.CleanIfDirty(settings));
    }

    [Fact]
    public void ARewrittenBatchKeepsItsBaseOffsetLastOffsetAndProducerFields()
    {
        using var log = Open(segmentBytes: 150);
        var first = RecordBatchBuilder.Build(
            [new(Bytes("a"), Bytes("1"), 1000), new(Bytes("b"), Bytes("2"), 1001), new(Bytes("c"), Bytes("3"), 1002), new(Bytes("a"), Bytes("4"), 1003)],
            producerId: 42,
            producerEpoch: 3,
            baseSequence: 0);
        Assert.Equal(0, log.Append(first, 9).BaseOffset);

        // Supersedes a (offset 3, the batch's last) and c: the batch keeps only b, yet spans 0..3.
        var second = RecordBatchBuilder.Build([new(Bytes("a"), Bytes("5"), 2000), new(Bytes("c"), Bytes("6"), 2001)], producerId: 42, producerEpoch: 3, baseSequence: 4);
        Assert.Equal(4, log.Append(second, 9).BaseOffset);
        Append(log, "z", "filler", 3000);
        Assert.True(log.Segments().Count >= 3);

        log.Clean(new CleanerSettings());

        var batch = Batches(log)[0];
        Assert.Equal((0L, 3L, 1), (batch.BaseOffset, batch.LastOffset, batch.RecordCount));
        Assert.Equal((42L, (short)3, 0, 9), (batch.ProducerId, batch.ProducerEpoch, batch.BaseSequence, batch.PartitionLeaderEpoch));
        Assert.Equal((1001L, 1001L), (batch.BaseTimestamp, batch.MaxTimestamp));
        Assert.Equal([(1L, "b", "2"), (4L, "a", "5"), (5L, "c", "6"), (6L, "z", "filler")], Records(log));
    }

    [Fact]
    public void TombstonesStayUntilDeleteRetentionHasPassedSinceTheFirstPassKeptThem()
    {
        var settings = new CleanerSettings { DeleteRetentionMs = 60_000 };
        using var log = Open(segmentBytes: 200);
        Append(log, "gone", "old", Now);
        Append(log, "kept", "value", Now);
        Append(log, "gone", null, Now);
        for (var i = 0; i < 6; i++)
        {
            Append(log, $"filler{i}", "x", Now);
        }

        log.Clean(settings);
        Assert.Contains((2L, "gone", null), Records(log));
        Assert.DoesNotContain((0L, "gone", "old"), Records(log));
        var tombstoneBatch = Batches(log).Single(b => b.BaseOffset == 2);
        Assert.True(tombstoneBatch.HasDeleteHorizon);
        Assert.Equal(Now + 60_000, tombstoneBatch.BaseTimestamp);

        // Not yet: a pass just before the horizon keeps it (and the dirty ratio alone would not run one).
        _time.Advance(TimeSpan.FromMilliseconds(59_999));
        Assert.Null(log.CleanIfDirty(settings));
        log.Clean(settings);
        Assert.Contains((2L, "gone", null), Records(log));

        // The horizon passing makes the log cleanable again, and the tombstone goes.
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.NotNull(log.CleanIfDirty(settings));
        Assert.DoesNotContain(Records(log), r => r.Key == "gone");
        Assert.Contains((1L, "kept", "value"), Records(log));
    }

    [Theory]
    [InlineData(CompressionType.Gzip)]
    [InlineData(CompressionType.Snappy)]
    [InlineData(CompressionType.Lz4)]
    [InlineData(CompressionType.Zstd)]
    public void CompressedBatchesAreWrittenBackInTheirOwnCodec(CompressionType codec)
    {
        using var log = Open(segmentBytes: 600);
        for (var i = 0; i < 12; i++)
        {
            var batch = RecordBatchBuilder.Build(
                [new(Bytes($"k{i % 4}"), Bytes($"v{3 * i}"), 1000 + i, [("h", Bytes("x"))]), new(Bytes($"u{i}"), Bytes($"v{(3 * i) + 1}"), 1000 + i), new(Bytes($"k{(i + 1) % 4}"), Bytes($"v{(3 * i) + 2}"), 1000 + i)],
                compression: codec);
            log.Append(batch, 0);
        }

        var before = Records(log);
        var activeBase = log.Segments()[^1].BaseOffset;
        Assert.True(log.Clean(new CleanerSettings()).SegmentsRewritten > 0);

        Assert.Equal(Expected(before, activeBase), Records(log));
        Assert.All(Batches(log), b => Assert.Equal(codec, b.Compression));
        var withHeader = Batches(log).SelectMany(b =>
        {
            var headers = new List<int>();
            foreach (var r in b.GetRecords())
            {
                headers.Add(r.Headers.Count);
            }

            return headers;
        });
        Assert.Contains(1, withHeader);
    }

    [Fact]
    public void TheLastBatchOfAProducerStaysAsAnEmptyHeaderSoItsSequenceSurvives()
    {
        using (var log = Open(segmentBytes: 200))
        {
            // Producer 7's two batches are both superseded; only the second (its last) stays, empty.
            log.Append(RecordBatchBuilder.Build([new(Bytes("a"), Bytes("1"), 1000)], producerId: 7, producerEpoch: 2, baseSequence: 0), 0);
            log.Append(RecordBatchBuilder.Build([new(Bytes("b"), Bytes("2"), 1001), new(Bytes("a"), Bytes("3"), 1002)], producerId: 7, producerEpoch: 2, baseSequence: 1), 0);
            Append(log, "a", "4", 2000);
            Append(log, "b", "5", 2001);
            Append(log, "c", "6", 2002);
            Append(log, "d", "7", 2003);

            log.Clean(new CleanerSettings());

            var batches = Batches(log);
            Assert.DoesNotContain(batches, b => b.BaseOffset == 0);
            var empty = batches.Single(b => b.ProducerId == 7);
            Assert.Equal((1L, 2L, 0, 1, (short)2), (empty.BaseOffset, empty.LastOffset, empty.RecordCount, empty.BaseSequence, empty.ProducerEpoch));
            Assert.Equal((CompressionType.None, -1L, 1002L), (empty.Compression, empty.BaseTimestamp, empty.MaxTimestamp));
            Assert.Equal(RecordBatch.HeaderSize, empty.TotalSize);
            Assert.Contains(log.ActiveProducers(), p => (p.ProducerId, p.Epoch, p.LastSequence) == (7L, (short)2, 2));
        }

        // Rebuilt from the empty header on open: the producer's next sequence is accepted, a gap is not.
        using var reopened = Open(segmentBytes: 200);
        Assert.Contains(reopened.ActiveProducers(), p => (p.ProducerId, p.Epoch, p.LastSequence) == (7L, (short)2, 2));
        Assert.Equal(AppendStatus.OutOfOrderSequence, reopened.Append(RecordBatchBuilder.Build([new(Bytes("a"), Bytes("x"), 3000)], producerId: 7, producerEpoch: 2, baseSequence: 5), 0).Status);
        Assert.Equal(AppendStatus.Appended, reopened.Append(RecordBatchBuilder.Build([new(Bytes("a"), Bytes("x"), 3000)], producerId: 7, producerEpoch: 2, baseSequence: 3), 0).Status);
    }

    [Fact]
    public void ReadsAtEveryOffsetWorkAcrossCleanedSegmentsBeforeAndAfterAReopen()
    {
        List<(long, string?, string?)> expected;
        using (var log = Open(segmentBytes: 300))
        {
            for (var i = 0; i < 80; i++)
            {
                Append(log, $"k{i % 7}", $"v{i}", Now);
            }

            var before = Records(log);
            var activeBase = log.Segments()[^1].BaseOffset;

            log.Clean(new CleanerSettings());

            expected = Expected(before, activeBase);
            Assert.Equal(expected, Records(log));
            CheckEveryOffset(log, expected);

            // Replaced files are retired as retention retires them (renamed, kept open for file.delete.delay.ms),
            // so a read that took the old segment list still completes.
            Assert.NotEmpty(Directory.GetFiles(_dir, "*.deleted"));
        }

        using var reopened = Open(segmentBytes: 300);
        Assert.Equal(80, reopened.LogEndOffset);
        Assert.Equal(expected, Records(reopened));
        CheckEveryOffset(reopened, expected);
    }

    private static void CheckEveryOffset(PartitionLog log, List<(long Offset, string?, string?)> expected)
    {
        for (long offset = 0; offset < log.LogEndOffset; offset++)
        {
            // The first batch read holds the first surviving record at or after the offset.
            var bytes = log.Read(offset, 1, minOneBatch: true, log.LogEndOffset);
            var batch = new RecordBatch(bytes);
            Assert.True(batch.LastOffset >= offset);
            var next = expected.First(r => r.Offset >= offset).Offset;
            Assert.InRange(next, batch.BaseOffset, batch.LastOffset);
        }
    }

    [Fact]
    public void OnOpenACleanedLeftoverIsDroppedAndASwapLeftoverReplacesItsSegment()
    {
        using (var log = Open(segmentBytes: 200))
        {
            for (var i = 0; i < 12; i++)
            {
                Append(log, $"k{i}", $"v{i}", 1000);
            }
        }

        var segments = Directory.GetFiles(_dir, "*.log").Order().ToList();
        Assert.True(segments.Count >= 3);

        // Crash while writing segment 1's cleaned copy: a torn .cleaned file.
        File.WriteAllBytes(segments[1] + ".cleaned", [1, 2, 3]);

        // Crash after segment 0's cleaned copy became .swap and the old file was renamed .deleted:
        // the swap file (here: the segment without its first batch) is the segment now.
        var original = File.ReadAllBytes(segments[0]);
        var firstBatch = (int)RecordBatch.DeclaredSize(original);
        File.WriteAllBytes(segments[0] + ".swap", original[firstBatch..]);
        File.Move(segments[0], segments[0] + ".deleted");

        // And crash after the swap file was written but before anything was renamed, for segment 2.
        var third = File.ReadAllBytes(segments[2]);
        File.WriteAllBytes(segments[2] + ".swap", third[(int)RecordBatch.DeclaredSize(third)..]);

        using var reopened = Open(segmentBytes: 200);
        Assert.Empty(Directory.GetFiles(_dir, "*.cleaned"));
        Assert.Empty(Directory.GetFiles(_dir, "*.swap"));
        Assert.Empty(Directory.GetFiles(_dir, "*.deleted"));
        Assert.Equal(original[firstBatch..], File.ReadAllBytes(segments[0]));
        var offsets = Records(reopened).Select(r => r.Offset).ToList();
        var thirdFirst = new RecordBatch(third[..(int)RecordBatch.DeclaredSize(third)]).BaseOffset;
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)i).Where(o => o != 0 && o != thirdFirst), offsets);
        Assert.Equal(12, reopened.LogEndOffset);
    }
}
