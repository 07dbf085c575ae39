using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>The on-disk <c>.index</c> and <c>.timeindex</c>, clean starts that trust them, and producer snapshots.</summary>
public sealed class SegmentIndexTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-index-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private static byte[] Batch(int records, long timestamp, int size = 40) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, records).Select(i => new RecordToWrite(null, new byte[size], timestamp + i)).ToList());

    private PartitionLog Open(bool clean, long segmentBytes = 1L << 30, TimeProvider? time = null) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = segmentBytes, IndexIntervalBytes = 200, SyncBeforeAck = false, CleanShutdown = clean }, time ?? TimeProvider.System);

    private string FirstSegment(string extension) => Path.Combine(_dir, "00000000000000000000" + extension);

    /// <summary>Writes 40 batches of 2 records (about 150 B each), timestamps rising by 10 per batch.</summary>
    private void Fill(PartitionLog log)
    {
        for (var i = 0; i < 40; i++)
        {
            log.Append(Batch(2, 1000 + (i * 10)), 0);
        }
    }

    [Fact]
    public void IndexFilesHoldKafkasEntries()
    {
        using (var log = Open(clean: false))
        {
            Fill(log);
        }

        var index = File.ReadAllBytes(FirstSegment(".index"));
        var time = File.ReadAllBytes(FirstSegment(".timeindex"));
        Assert.True(index.Length >= 8 * 10, $"index has {index.Length} bytes");
        Assert.Equal(0, index.Length % 8);
        Assert.Equal(0, time.Length % 12);
        var log2 = File.ReadAllBytes(FirstSegment(".log"));
        long previous = -1;
        for (var i = 0; i < index.Length; i += 8)
        {
            // Each entry: the last offset of the batch (relative) at that file position.
            var relative = BinaryPrimitives.ReadInt32BigEndian(index.AsSpan(i));
            var position = BinaryPrimitives.ReadInt32BigEndian(index.AsSpan(i + 4));
            var batch = new RecordBatch(log2.AsMemory(position, (int)RecordBatch.DeclaredSize(log2.AsSpan(position))));
            Assert.Equal(batch.LastOffset, relative);
            Assert.True(relative > previous);
            previous = relative;
        }

        for (var i = 0; i < time.Length; i += 12)
        {
            var timestamp = BinaryPrimitives.ReadInt64BigEndian(time.AsSpan(i));
            var relative = BinaryPrimitives.ReadInt32BigEndian(time.AsSpan(i + 8));
            Assert.Equal(1000 + ((relative / 2) * 10) + 1, timestamp);
        }
    }

    [Fact]
    public void ACleanStartTrustsTheFilesAndDoesNotReadTheLogThrough()
    {
        using (var log = Open(clean: false))
        {
            Fill(log);
        }

        // Damage a batch in the middle: a clean start does not read it, a recovery would cut there.
        var bytes = File.ReadAllBytes(FirstSegment(".log"));
        bytes[(bytes.Length / 2) + 30] ^= 0xFF;
        File.WriteAllBytes(FirstSegment(".log"), bytes);
        using (var trusted = Open(clean: true))
        {
            Assert.Equal(80, trusted.LogEndOffset);
            Assert.Equal(0, trusted.RecoveredTruncatedBytes);
            Assert.Equal(70, trusted.FindOffsetForTimestamp(1351)!.Value.Offset);
            Assert.Equal(new OffsetAndTimestamp(79, 1391), trusted.FindMaxTimestamp());
            Assert.Equal(78, new RecordBatch(trusted.Read(78, 1, true, trusted.HighWatermark)).BaseOffset);
        }

        using var recovered = Open(clean: false);
        Assert.True(recovered.RecoveredTruncatedBytes > 0);
        Assert.True(recovered.RecoveryLostRecords);
        Assert.Equal(80, recovered.LogEndOffset); // the offsets cut are not handed out again
    }

    [Theory]
    [InlineData("missing")]
    [InlineData("garbage")]
    [InlineData("short")]
    [InlineData("preallocated")]
    public void AnIndexThatCantBeTrustedIsRebuiltOrCompleted(string damage)
    {
        using (var log = Open(clean: false))
        {
            Fill(log);
        }

        var good = File.ReadAllBytes(FirstSegment(".index"));
        switch (damage)
        {
            case "missing":
                File.Delete(FirstSegment(".index"));
                break;
            case "garbage":
                File.WriteAllBytes(FirstSegment(".index"), [.. Enumerable.Range(0, 64).Select(i => (byte)(255 - i))]);
                break;
            case "short":
                // A crash between the log write and the index write: the last entries never made it.
                File.WriteAllBytes(FirstSegment(".index"), good[..16]);
                break;
            case "preallocated":
                // Kafka pre-allocates index files with zeros.
                File.WriteAllBytes(FirstSegment(".index"), [.. good, .. new byte[4096]]);
                File.WriteAllBytes(FirstSegment(".timeindex"), [.. File.ReadAllBytes(FirstSegment(".timeindex")), .. new byte[4096]]);
                break;
        }

        using (var log = Open(clean: true))
        {
            Assert.Equal(80, log.LogEndOffset);
            for (var offset = 0; offset < 80; offset += 7)
            {
                var batch = new RecordBatch(log.Read(offset, 1, true, log.HighWatermark));
                Assert.InRange(offset, batch.BaseOffset, batch.LastOffset);
            }

            Assert.Equal(41, log.FindOffsetForTimestamp(1201)!.Value.Offset + 1);
        }

        if (damage != "short")
        {
            Assert.Equal(good, File.ReadAllBytes(FirstSegment(".index")));
        }
    }

    [Fact]
    public void ClosedSegmentsGetAFinalTimeIndexEntryAndLookupsSkipSegments()
    {
        using (var log = Open(clean: false, segmentBytes: 1000))
        {
            Fill(log);
            Assert.True(log.Segments().Count > 3);
        }

        using var reopened = Open(clean: true, segmentBytes: 1000);
        var segments = reopened.Segments();
        Assert.Equal(1391, segments[^1].MaxTimestamp);
        Assert.All(segments.Zip(segments.Skip(1)), pair => Assert.True(pair.First.MaxTimestamp < pair.Second.MaxTimestamp));
        foreach (var target in new[] { 1000L, 1005, 1200, 1391 })
        {
            var found = reopened.FindOffsetForTimestamp(target)!.Value;
            var batch = new RecordBatch(reopened.Read(found.Offset, 1, true, reopened.HighWatermark));
            Assert.True(batch.MaxTimestamp >= target);
            Assert.True(batch.BaseOffset == 0 || new RecordBatch(reopened.Read(batch.BaseOffset - 1, 1, true, reopened.HighWatermark)).MaxTimestamp < target);
        }
    }

    [Fact]
    public void ACleanStartTakesTheProducerStateFromTheSnapshot()
    {
        var first = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("a"), 1), new(null, Encoding.UTF8.GetBytes("b"), 2)], producerId: 7, producerEpoch: 3, baseSequence: 0);
        var second = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("c"), 3)], producerId: 7, producerEpoch: 3, baseSequence: 2);
        using (var log = Open(clean: false))
        {
            log.Append(first.ToArray(), 0);
            log.Append(second.ToArray(), 0);
        }

        var snapshot = Path.Combine(_dir, "00000000000000000003.snapshot");
        var bytes = File.ReadAllBytes(snapshot);
        Assert.Equal(1, BinaryPrimitives.ReadInt16BigEndian(bytes));
        Assert.Equal(Crc32C.Compute(bytes.AsSpan(6)), BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(2)));
        Assert.Equal(1, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(6)));
        Assert.Equal(7, BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(10)));
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20))); // last sequence
        Assert.Equal(2, BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(24))); // last offset

        // Remove the producer's batches from what a header walk could see: only the snapshot knows.
        using (var log = Open(clean: true))
        {
            Assert.Equal(new AppendResult(AppendStatus.Duplicate, 2) { LastOffset = 2, LogStartOffset = 0 }, log.Append(second.ToArray(), 0));
            var gap = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("d"), 4)], producerId: 7, producerEpoch: 3, baseSequence: 9);
            Assert.Equal(AppendStatus.OutOfOrderSequence, log.Append(gap, 0).Status);
            var next = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("d"), 4)], producerId: 7, producerEpoch: 3, baseSequence: 3);
            Assert.Equal(new AppendResult(AppendStatus.Appended, 3) { LastOffset = 3, LogStartOffset = 0 }, log.Append(next, 0));
        }

        // The snapshot is taken at the log end of the last clean stop; the older one is gone.
        Assert.Equal(["00000000000000000004.snapshot"], Directory.GetFiles(_dir, "*.snapshot").Select(Path.GetFileName));
    }

    [Fact]
    public void SegmentsRollByAge()
    {
        var clock = new FakeTimeProvider(DateTimeOffset.FromUnixTimeMilliseconds(1_000_000));
        var options = new PartitionLogOptions { SyncBeforeAck = false, SegmentAge = TimeSpan.FromHours(1) };
        using var log = PartitionLog.Open(_dir, options, clock);
        log.Append(Batch(1, clock.GetUtcNow().ToUnixTimeMilliseconds()), 0);
        clock.Advance(TimeSpan.FromMinutes(30));
        log.Append(Batch(1, clock.GetUtcNow().ToUnixTimeMilliseconds()), 0);
        Assert.Single(log.Segments());
        clock.Advance(TimeSpan.FromMinutes(31));
        log.Append(Batch(1, clock.GetUtcNow().ToUnixTimeMilliseconds()), 0);
        Assert.Equal([0L, 2L], log.Segments().Select(s => s.BaseOffset));
    }
}
