using System.Buffers;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// Segment data written and read with O_DIRECT: every append size reads back as written, the
/// block padding of the active segment never counts as data or as a loss, and read-ahead serves a
/// consumer correctly, also one that follows a writer.
/// </summary>
public sealed class DirectIoTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-direct-" + Guid.NewGuid().ToString("N")[..10]);

    public DirectIoTests()
    {
        Directory.CreateDirectory(_dir);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    // Where the file system has no O_DIRECT, segments fall back to the page cache; the tests then
    // check that fallback instead.
    private bool DirectSupported()
    {
        var probe = Path.Combine(_dir, "probe");
        File.WriteAllBytes(probe, []);
        using var handle = DirectIo.TryOpen(probe);
        File.Delete(probe);
        return handle is not null;
    }

    private static byte[] Batch(int records, int size, int seed)
    {
        var random = new Random(seed);
        return RecordBatchBuilder.Build(Enumerable.Range(0, records).Select(i =>
        {
            var value = new byte[size];
            random.NextBytes(value);
            return new RecordToWrite(null, value, 1000 + i);
        }).ToList());
    }

    private PartitionLog Open(string dir, bool directIo = true, long segmentBytes = 1L << 30) =>
        PartitionLog.Open(dir, new PartitionLogOptions { DirectIo = directIo, SegmentBytes = segmentBytes, SyncBeforeAck = false }, TimeProvider.System);

    // Sizes that start and end anywhere in a block, and batches larger than a transfer chunk.
    private static List<byte[]> Batches() =>
    [
        Batch(1, 1, 1), Batch(3, 100, 2), Batch(1, 4000, 3), Batch(2, 4096, 4), Batch(1, 10, 5),
        Batch(40, 30_000, 6), Batch(1, 2_500_000, 7), Batch(7, 333, 8), Batch(1, 4033, 9), Batch(5, 1, 10),
    ];

    // The stored batch is the appended one except for the base offset and leader epoch.
    private static void AssertSameBatch(byte[] appended, ReadOnlySpan<byte> stored, long baseOffset)
    {
        Assert.Equal(appended.Length, stored.Length);
        Assert.Equal(baseOffset, new RecordBatch(stored.ToArray()).BaseOffset);
        Assert.True(stored[16..].SequenceEqual(appended.AsSpan(16)));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void AppendsOfEverySizeReadBackAsWrittenAndTheClosedFileIsExact(bool directIo)
    {
        var batches = Batches();
        var offsets = new List<long>();
        using (var log = Open(_dir, directIo))
        {
            foreach (var batch in batches)
            {
                offsets.Add(log.Append(batch.ToArray(), 0).BaseOffset);
            }

            for (var i = 0; i < batches.Count; i++)
            {
                AssertSameBatch(batches[i], log.Read(offsets[i], 1, minOneBatch: true, log.LogEndOffset).Span, offsets[i]);
            }

            // While the segment is active, a direct writer leaves its file at a block boundary,
            // the bytes past the data all zeros.
            var data = batches.Sum(b => (long)b.Length);
            var path = Path.Combine(_dir, "00000000000000000000.log");
            var file = ReadShared(path);
            Assert.Equal(data, log.Segments()[0].Size);
            if (directIo && DirectSupported())
            {
                Assert.Equal(DirectIo.AlignUp(data), file.Length);
                Assert.True(file.AsSpan((int)data).IndexOfAnyExcept((byte)0) < 0);
            }
            else
            {
                Assert.Equal(data, file.Length);
            }
        }

        // Closed: exactly the batches, as Kafka lays them out; a clean reopen goes on after them.
        var closed = File.ReadAllBytes(Path.Combine(_dir, "00000000000000000000.log"));
        Assert.Equal(batches.Sum(b => (long)b.Length), closed.Length);
        using var reopened = Open(_dir, directIo);
        var next = Batch(2, 77, 11);
        Assert.Equal(offsets[^1] + 5, reopened.Append(next.ToArray(), 0).BaseOffset);
        for (var i = 0; i < batches.Count; i++)
        {
            AssertSameBatch(batches[i], reopened.Read(offsets[i], 1, minOneBatch: true, reopened.LogEndOffset).Span, offsets[i]);
        }

        AssertSameBatch(next, reopened.Read(offsets[^1] + 5, 1, minOneBatch: true, reopened.LogEndOffset).Span, offsets[^1] + 5);
    }

    [Fact]
    public void RolledSegmentsLoseTheirPadding()
    {
        using var log = Open(_dir, segmentBytes: 10_000);
        for (var i = 0; i < 30; i++)
        {
            log.Append(Batch(1, 1000 + i, i), 0);
        }

        var segments = log.Segments();
        Assert.True(segments.Count > 3);
        foreach (var (baseOffset, size, _) in segments.Take(segments.Count - 1))
        {
            Assert.Equal(size, new FileInfo(Path.Combine(_dir, LogSegment.FileName(baseOffset))).Length);
        }
    }

    [Fact]
    public void TheZeroPaddingACrashLeavesIsNeitherDataNorALoss()
    {
        var batches = Batches();
        var crashed = _dir + "-crashed";
        try
        {
            using (var log = Open(_dir))
            {
                foreach (var batch in batches)
                {
                    log.Append(batch.ToArray(), 0);
                }

                // The files as a kill -9 leaves them: the active segment still padded.
                Directory.CreateDirectory(crashed);
                foreach (var file in Directory.GetFiles(_dir))
                {
                    File.WriteAllBytes(Path.Combine(crashed, Path.GetFileName(file)), ReadShared(file));
                }
            }

            var count = batches.Sum(b => new RecordBatch(b).LastOffsetDelta + 1);
            using var recovered = Open(crashed);
            Assert.Equal(count, recovered.LogEndOffset);
            Assert.Equal(0, recovered.RecoveredTruncatedBytes);
            Assert.False(recovered.RecoveryLostRecords);

            // The next append continues the partial last block that recovery found in the file.
            var next = Batch(3, 5, 99);
            Assert.Equal(count, recovered.Append(next.ToArray(), 0).BaseOffset);
            AssertSameBatch(next, recovered.Read(count, 1, minOneBatch: true, recovered.LogEndOffset).Span, count);
            AssertSameBatch(batches[^1], recovered.Read(count - 5, 1, minOneBatch: true, recovered.LogEndOffset).Span, count - 5);
        }
        finally
        {
            if (Directory.Exists(crashed))
            {
                Directory.Delete(crashed, recursive: true);
            }
        }
    }

    [Fact]
    public async Task ReadAheadServesAConsumerThatFollowsAWriter()
    {
        using var log = Open(_dir, segmentBytes: 8L * 1024 * 1024);
        var appended = new List<byte[]>();
        var writer = Task.Run(() =>
        {
            for (var i = 0; i < 400; i++)
            {
                var batch = Batch(1 + (i % 5), 1 + (i * 7919 % 60_000), i);
                lock (appended)
                {
                    appended.Add(batch);
                }

                log.Append(batch.ToArray(), 0);
            }
        });

        // A consumer reading big chunks from the start, as a fetch does, until it has them all.
        long offset = 0;
        var seen = 0;
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (seen < 400)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {seen} batches read");
            var rented = new List<byte[]>();
            var bytes = log.Read(offset, 1024 * 1024, wholeFirstBatchUpTo: long.MaxValue, log.LogEndOffset, rented);
            var at = 0;
            while (at < bytes.Length)
            {
                var batch = new RecordBatch(bytes.Slice(at, (int)RecordBatch.DeclaredSize(bytes.Span[at..])));
                byte[] expected;
                lock (appended)
                {
                    expected = appended[seen];
                }

                Assert.True(batch.IsCrcValid());
                AssertSameBatch(expected, bytes.Span.Slice(at, expected.Length), offset);
                offset = batch.LastOffset + 1;
                at += expected.Length;
                seen++;
            }

            foreach (var buffer in rented)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }

            if (bytes.IsEmpty)
            {
                await Task.Delay(1);
            }
        }

        await writer;
    }

    private static byte[] ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
