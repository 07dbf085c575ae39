using System.Text;
using Microsoft.Extensions.Time.Testing;
using Moldau.Protocol.Records;
using Moldau.Storage.Cleaning;

namespace Moldau.Storage.Tests;

/// <summary>
/// The topic configs a partition log acts on (<see cref="PartitionLogOptions"/>), over real
/// segment files: a change through <see cref="PartitionLog.Reconfigure"/> reaches an open log,
/// and each setting has the effect Kafka gives it.
/// </summary>
public sealed class LogConfigTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-logconfig-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly FakeTimeProvider _time = new(Start);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    private PartitionLog Open(PartitionLogOptions options) => PartitionLog.Open(_dir, options with { SyncBeforeAck = false }, _time);

    private byte[] Batch(string key = "k", string value = "value", CompressionType compression = CompressionType.None, long? timestamp = null) =>
        RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value), timestamp ?? Now)], compression: compression);

    private static RecordBatch Stored(PartitionLog log, long offset)
    {
        var bytes = log.Read(offset, 1 << 20, minOneBatch: true, log.LogEndOffset);
        var e = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
        Assert.True(e.MoveNext());
        return new RecordBatch(bytes.Slice(e.CurrentStart, e.CurrentLength).ToArray());
    }

    [Fact]
    public void ASegmentBytesChangeReachesAnOpenLog()
    {
        using var log = Open(new PartitionLogOptions());
        for (var i = 0; i < 5; i++)
        {
            log.Append(Batch(), 0);
        }

        Assert.Single(log.Segments());
        log.Reconfigure(log.Options with { SegmentBytes = 200 });
        for (var i = 0; i < 5; i++)
        {
            log.Append(Batch(), 0);
        }

        Assert.True(log.Segments().Count >= 3, $"{log.Segments().Count} segments");
        Assert.Equal(200, log.Options.SegmentBytes);
    }

    [Fact]
    public void ReconfigureKeepsWhatOnlyOpeningUses()
    {
        using var log = Open(new PartitionLogOptions { DirectIo = false, RecoveryPoint = 0, FlushLinger = TimeSpan.FromSeconds(3) });
        log.Reconfigure(new PartitionLogOptions { SegmentBytes = 1000, DirectIo = true, FlushLinger = TimeSpan.Zero });
        Assert.False(log.Options.DirectIo);
        Assert.Equal(TimeSpan.FromSeconds(3), log.Options.FlushLinger);
        Assert.Equal(1000, log.Options.SegmentBytes);
    }

    [Fact]
    public void ASegmentRollsWhenItsIndexIsFull()
    {
        // index.interval.bytes=0: an offset index entry for every batch after the first; 16 bytes hold two.
        using var log = Open(new PartitionLogOptions { IndexIntervalBytes = 0, MaxIndexBytes = 16 });
        for (var i = 0; i < 12; i++)
        {
            log.Append(Batch(), 0);
        }

        var segments = log.Segments();
        Assert.True(segments.Count >= 3, $"{segments.Count} segments");
        foreach (var file in Directory.GetFiles(_dir, "*.index"))
        {
            Assert.True(new FileInfo(file).Length <= 16, $"{file}: {new FileInfo(file).Length} bytes");
        }

        // The default (10 MiB) never fills with these.
        log.Reconfigure(log.Options with { MaxIndexBytes = 10 * 1024 * 1024 });
        var before = log.Segments().Count;
        for (var i = 0; i < 12; i++)
        {
            log.Append(Batch(), 0);
        }

        Assert.Equal(before, log.Segments().Count); // all twelve in the active segment
    }

    [Fact]
    public void SegmentJitterRollsASegmentBeforeSegmentMs()
    {
        var age = TimeSpan.FromMilliseconds(1_000_000);
        using (var steady = Open(new PartitionLogOptions { SegmentAge = age }))
        {
            steady.Append(Batch(), 0);
            _time.Advance(age - TimeSpan.FromMilliseconds(1));
            steady.Append(Batch(), 0);
            Assert.Single(steady.Segments()); // no jitter: not yet segment.ms old
        }

        Directory.Delete(_dir, recursive: true);
        using var jittered = Open(new PartitionLogOptions { SegmentAge = age, SegmentJitter = age });
        jittered.Append(Batch(), 0);
        _time.Advance(age - TimeSpan.FromMilliseconds(1));
        jittered.Append(Batch(), 0);

        // The jitter is drawn from [0, 1,000,000) ms: only a draw of 0 (one in a million) leaves one segment.
        Assert.Equal(2, jittered.Segments().Count);
    }

    [Fact]
    public void ACompactedLogRollsByMaxCompactionLagWhenShorterThanSegmentMs()
    {
        using var log = Open(new PartitionLogOptions { Compact = true, MaxCompactionLagMs = 60_000 });
        log.Append(Batch(), 0);
        _time.Advance(TimeSpan.FromMinutes(2));
        log.Append(Batch(), 0);
        Assert.Equal(2, log.Segments().Count);
    }

    [Fact]
    public void MaxCompactionLagCleansALogBelowTheDirtyRatio()
    {
        using var log = Open(new PartitionLogOptions { SegmentBytes = 150, Compact = true });
        for (var i = 0; i < 6; i++)
        {
            log.Append(Batch(key: "k" + (i % 2)), 0);
        }

        var settings = new CleanerSettings { MinCleanableDirtyRatio = 1.0 };
        Assert.True(log.Clean(settings).SegmentsRewritten > 0);

        // A little more: dirty, but far below a ratio of 1.
        log.Append(Batch(key: "k0"), 0);
        log.Append(Batch(key: "k0"), 0);
        Assert.InRange(log.DirtyRatio, 0.01, 0.99);
        Assert.Null(log.CleanIfDirty(settings));
        Assert.Null(log.CleanIfDirty(settings with { MaxCompactionLagMs = 60_000 }));

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.NotNull(log.CleanIfDirty(settings with { MaxCompactionLagMs = 60_000 }));
    }

    [Fact]
    public void MinCompactionLagLeavesYoungSegmentsAlone()
    {
        using var log = Open(new PartitionLogOptions { SegmentBytes = 150, Compact = true });
        for (var i = 0; i < 6; i++)
        {
            log.Append(Batch(key: "k"), 0);
        }

        var settings = new CleanerSettings { MinCleanableDirtyRatio = 0.1, MinCompactionLagMs = 60_000 };
        Assert.Null(log.CleanIfDirty(settings));
        Assert.Equal(0, log.CleanedUpTo);

        _time.Advance(TimeSpan.FromMinutes(2));
        Assert.NotNull(log.CleanIfDirty(settings));
        Assert.True(log.CleanedUpTo > 0);
    }

    [Theory]
    [InlineData(CompressionType.None, CompressionType.Zstd)]
    [InlineData(CompressionType.Gzip, CompressionType.Lz4)]
    [InlineData(CompressionType.Snappy, CompressionType.None)]
    [InlineData(CompressionType.Zstd, CompressionType.Gzip)]
    public void ABatchIsStoredInTheTopicsCodec(CompressionType sent, CompressionType topic)
    {
        using var log = Open(new PartitionLogOptions { Compression = topic });
        var value = string.Concat(Enumerable.Repeat("compressible ", 50));
        var batch = RecordBatchBuilder.Build(
            [new(Encoding.UTF8.GetBytes("a"), Encoding.UTF8.GetBytes(value), Now), new(null, Encoding.UTF8.GetBytes("b"), Now + 1, [("h", new byte[] { 1, 2 })])],
            producerId: 7,
            producerEpoch: 0,
            baseSequence: 0,
            compression: sent);
        Assert.Equal(AppendStatus.Appended, log.Append(batch, 0).Status);

        var stored = Stored(log, 0);
        Assert.Equal(topic, stored.Compression);
        Assert.True(stored.IsCrcValid());
        Assert.Equal((7L, (short)0, 0, 2), (stored.ProducerId, stored.ProducerEpoch, stored.BaseSequence, stored.RecordCount));
        var records = new List<(string? Key, string Value, long Timestamp, int Headers)>();
        foreach (var r in stored.GetRecords())
        {
            records.Add((r.Key is { } k ? Encoding.UTF8.GetString(k.Span) : null, Encoding.UTF8.GetString(r.Value!.Value.Span), stored.BaseTimestamp + r.TimestampDelta, r.Headers.Count));
        }

        Assert.Equal([("a", value, Now, 0), (null, "b", Now + 1, 1)], records);

        // A retry of the same batch is still known as a duplicate (the producer state holds the header).
        Assert.Equal(AppendStatus.Duplicate, log.Append(RecordBatchBuilder.Build(
            [new(Encoding.UTF8.GetBytes("a"), Encoding.UTF8.GetBytes(value), Now), new(null, Encoding.UTF8.GetBytes("b"), Now + 1, [("h", new byte[] { 1, 2 })])],
            producerId: 7,
            producerEpoch: 0,
            baseSequence: 0,
            compression: sent), 0).Status);
    }

    [Fact]
    public void ABatchInTheTopicsCodecOrUnderProducerIsStoredAsSent()
    {
        using var log = Open(new PartitionLogOptions { Compression = CompressionType.Gzip });
        var gzip = Batch(compression: CompressionType.Gzip);
        log.Append(gzip.ToArray(), 0);
        log.Reconfigure(log.Options with { Compression = null });
        var lz4 = Batch(compression: CompressionType.Lz4);
        log.Append(lz4.ToArray(), 0);
        Assert.Equal(gzip[16..], Stored(log, 0).Bytes.Span[16..].ToArray()); // all but base offset, length and leader epoch
        Assert.Equal(CompressionType.Lz4, Stored(log, 1).Compression);
    }

    [Fact]
    public void ABatchThatGrowsPastMaxMessageBytesWhenDecompressedIsRefused()
    {
        using var log = Open(new PartitionLogOptions { Compression = CompressionType.None, MaxMessageBytes = 1000 });
        var big = Batch(value: new string('x', 5000), compression: CompressionType.Gzip);
        Assert.True(big.Length < 1000);
        Assert.Equal(AppendStatus.MessageTooLarge, log.Append(big, 0).Status);
        Assert.Equal(0, log.LogEndOffset);
    }
}
