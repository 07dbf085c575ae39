using System.Buffers;
using System.Globalization;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// The O_DIRECT handles of segments under the runtime's <see cref="FileCache"/>: opened by the
/// first direct read or write, leased for each, closed when cold and reopened with O_DIRECT by the
/// next use. Under a budget of 16 descriptors, logs with direct I/O append (partial blocks and
/// all), read (small reads and read-ahead), roll, flush, trim and recover, with their direct
/// handles closed and reopened in between, and hold exactly what a log whose files all stayed open
/// holds. Descriptors are counted in /proc/self/fd, not taken from the cache's word.
/// </summary>
public sealed class DirectHandleCacheTests : IDisposable
{
    private const int Budget = FileCache.MinimumBudget;
    private const int Partitions = 24;
    private const int Rounds = 80;
    private const int ODirect = 0x4000;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-directfd-" + Guid.NewGuid().ToString("N")[..10]);

    public DirectHandleCacheTests()
    {
        Directory.CreateDirectory(_root);
    }

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private static PartitionLogOptions Options(bool clean = false) =>
        new() { SegmentBytes = 16 * 1024, IndexIntervalBytes = 1024, SyncBeforeAck = false, CleanShutdown = clean, DirectIo = true, FileDeleteDelay = TimeSpan.Zero };

    // Sizes that end anywhere in a block, now and then one larger than the read window.
    private static byte[] Batch(int n) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, 1 + (n % 4)).Select(i => new RecordToWrite(null, Enumerable.Repeat((byte)(n + i), n % 17 == 0 ? 9000 : 37 + (n * 131 % 700)).ToArray(), 1000 + n)).ToList());

    // The descriptors this process holds on files under a path (the logs p0, p1, ... of the small
    // runtime by default, not the reference), and how many are O_DIRECT.
    private (int All, int Direct) Descriptors(string? under = null)
    {
        under ??= Path.Combine(_root, "p");
        int all = 0, direct = 0;
        foreach (var fd in Directory.GetFiles("/proc/self/fd"))
        {
            try
            {
                if (new FileInfo(fd).LinkTarget is not { } target || !target.StartsWith(under, StringComparison.Ordinal))
                {
                    continue;
                }

                all++;
                var flags = File.ReadLines("/proc/self/fdinfo/" + Path.GetFileName(fd)).First(l => l.StartsWith("flags:", StringComparison.Ordinal));
                if ((Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & ODirect) != 0)
                {
                    direct++;
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
            {
                // Closed while looked at.
            }
        }

        return (all, direct);
    }

    // Every batch from the start, through the read-ahead (large reads with a rented list) and
    // through small header-sized reads, compared with the reference's bytes.
    private static void AssertReadsAsReference(PartitionLog log, PartitionLog reference)
    {
        Assert.Equal(reference.LogStartOffset, log.LogStartOffset);
        Assert.Equal(reference.LogEndOffset, log.LogEndOffset);
        var rented = new List<byte[]>();
        try
        {
            var offset = log.LogStartOffset;
            while (offset < log.LogEndOffset)
            {
                var bytes = log.Read(offset, 256 * 1024, long.MaxValue, long.MaxValue, rented);
                var expected = reference.Read(offset, 256 * 1024, long.MaxValue, long.MaxValue, rented: null);
                Assert.True(bytes.Span.SequenceEqual(expected.Span), $"offset {offset}");
                var last = offset;
                for (var at = 0; at < bytes.Length; at += (int)new RecordBatchHeader(bytes.Span[at..]).TotalSize)
                {
                    last = new RecordBatchHeader(bytes.Span[at..]).LastOffset;
                }

                offset = last + 1;
            }

            for (var o = log.LogStartOffset; o < log.LogEndOffset; o += 7)
            {
                Assert.True(log.Read(o, 1, minOneBatch: true, long.MaxValue).Span.SequenceEqual(reference.Read(o, 1, minOneBatch: true, long.MaxValue).Span), $"offset {o}");
            }
        }
        finally
        {
            foreach (var buffer in rented)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    [Fact]
    public void DirectHandlesUnderATinyBudgetAreClosedAndReopenedWithoutLosingOrReorderingAWrite()
    {
        using var large = new StorageRuntime(openFilesMax: 100_000);
        var small = new StorageRuntime(openFilesMax: Budget);
        var reference = PartitionLog.Open(Path.Combine(_root, "reference"), Options(), TimeProvider.System, large);
        var logs = Enumerable.Range(0, Partitions).Select(p => PartitionLog.Open(Path.Combine(_root, "p" + p), Options(), TimeProvider.System, small)).ToArray();
        var directSeen = 0;
        for (var n = 0; n < Rounds; n++)
        {
            // Round-robin: each partition's direct handle is closed between two of its appends,
            // usually with a partial last block held in memory, dropped, and read back.
            reference.Append(Batch(n), 0);
            foreach (var log in logs)
            {
                log.Append(Batch(n), 0);
            }

            var (all, direct) = Descriptors();
            Assert.InRange(all, 0, Budget);
            Assert.InRange(small.OpenFiles.OpenCount, 0, Budget);
            directSeen = Math.Max(directSeen, direct);

            if (n % 10 == 9)
            {
                reference.Flush();
                foreach (var log in logs)
                {
                    log.Flush();
                }
            }

            if (n % 20 == 19)
            {
                // Trim: whole segments below the new start go (renamed, then deleted).
                var start = reference.LogEndOffset / 3;
                reference.AdvanceLogStartOffset(start);
                foreach (var log in logs)
                {
                    log.AdvanceLogStartOffset(start);
                }
            }

            if (n % 25 == 24)
            {
                foreach (var log in logs)
                {
                    AssertReadsAsReference(log, reference);
                    // Over the budget only by files leased now: a read-ahead load on each reader thread.
                    Assert.InRange(Descriptors().All, 0, Budget + 4);
                }
            }
        }

        Assert.True(directSeen > 0, "no O_DIRECT descriptor was ever open");
        Assert.True(reference.Segments().Count > 3, "the logs rolled");
        Assert.True(small.OpenFiles.Reopens > Partitions * Rounds / 2, $"reopens {small.OpenFiles.Reopens}");
        foreach (var log in logs)
        {
            AssertReadsAsReference(log, reference);
        }

        // A crash: the files as they are after a flush, with no clean close, under a tiny budget.
        var crashed = Path.Combine(_root, "crashed");
        foreach (var log in logs)
        {
            log.Flush();
        }

        for (var p = 0; p < Partitions; p++)
        {
            var copy = Directory.CreateDirectory(Path.Combine(crashed, "p" + p)).FullName;
            foreach (var file in Directory.GetFiles(Path.Combine(_root, "p" + p)))
            {
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            }
        }

        using (var after = new StorageRuntime(openFilesMax: Budget))
        {
            var recovered = Enumerable.Range(0, Partitions).Select(p => PartitionLog.Open(Path.Combine(crashed, "p" + p), Options(), TimeProvider.System, after)).ToArray();
            foreach (var log in recovered)
            {
                Assert.Equal(reference.LogEndOffset, log.LogEndOffset);
                log.Append(Batch(5000), 0);
                Assert.InRange(Descriptors(crashed).All, 0, Budget);
            }

            foreach (var log in recovered)
            {
                var end = log.Read(reference.LogEndOffset, 1, minOneBatch: true, long.MaxValue);
                Assert.Equal(reference.LogEndOffset, new RecordBatchHeader(end.Span).BaseOffset);
                log.Dispose();
            }
        }

        // A clean close, then a clean start under the same budget: every file byte for byte the
        // reference's (padding cut, index files written through reopened handles).
        reference.Dispose();
        foreach (var log in logs)
        {
            log.Dispose();
        }

        small.Dispose();
        var expected = Directory.GetFiles(Path.Combine(_root, "reference"), "0*").Select(Path.GetFileName).Order().ToArray();
        for (var p = 0; p < Partitions; p++)
        {
            var dir = Path.Combine(_root, "p" + p);
            Assert.Equal(expected, Directory.GetFiles(dir, "0*").Select(Path.GetFileName).Order().ToArray());
            foreach (var name in expected)
            {
                Assert.Equal(File.ReadAllBytes(Path.Combine(_root, "reference", name!)), File.ReadAllBytes(Path.Combine(dir, name!)));
            }
        }

        using var again = new StorageRuntime(openFilesMax: Budget);
        using var reopenedReference = PartitionLog.Open(Path.Combine(_root, "reference"), Options(clean: true), TimeProvider.System, large);
        for (var p = 0; p < Partitions; p++)
        {
            using var log = PartitionLog.Open(Path.Combine(_root, "p" + p), Options(clean: true), TimeProvider.System, again);
            AssertReadsAsReference(log, reopenedReference);
            Assert.InRange(Descriptors().All, 0, Budget);
        }
    }

    [Fact]
    public async Task ReadsOnOtherThreadsDuringAppendsKeepTheirHandlesWhileTheCacheClosesColdOnes()
    {
        using var small = new StorageRuntime(openFilesMax: Budget);
        var logs = Enumerable.Range(0, Partitions).Select(p => PartitionLog.Open(Path.Combine(_root, "p" + p), Options(), TimeProvider.System, small)).ToArray();
        using var stop = new CancellationTokenSource();
        var failures = new List<Exception>();

        // Readers read every batch of random partitions while the writer appends to all of them:
        // a handle closed under a lease would fail a read, or read another file's bytes.
        var readers = Enumerable.Range(0, 3).Select(r => Task.Run(() =>
        {
            var random = new Random(r);
            var rented = new List<byte[]>();
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    var log = logs[random.Next(Partitions)];
                    var end = log.LogEndOffset;
                    for (var offset = 0L; offset < end;)
                    {
                        var bytes = log.Read(offset, 128 * 1024, long.MaxValue, end, rented);
                        Assert.False(bytes.IsEmpty);
                        for (var at = 0; at < bytes.Length;)
                        {
                            var header = new RecordBatchHeader(bytes.Span[at..]);
                            Assert.Equal(offset, header.BaseOffset);
                            Assert.True(new RecordBatchHeader(bytes.Span.Slice(at, (int)header.TotalSize)).IsCrcValid());
                            offset = header.LastOffset + 1;
                            at += (int)header.TotalSize;
                        }

                        foreach (var buffer in rented)
                        {
                            ArrayPool<byte>.Shared.Return(buffer);
                        }

                        rented.Clear();
                    }
                }
            }
            catch (Exception e)
            {
                lock (failures)
                {
                    failures.Add(e);
                }
            }
        })).ToArray();

        for (var n = 0; n < Rounds; n++)
        {
            foreach (var log in logs)
            {
                log.Append(Batch(n), 0);
            }
        }

        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Empty(failures);
        Assert.True(small.OpenFiles.Evictions > Partitions);
        foreach (var log in logs)
        {
            log.Dispose();
        }
    }

    [Fact]
    public void LeasesFromManyThreadsNeverSeeAHandleClosedUnderThem()
    {
        using var cache = new FileCache(Budget);
        var files = Enumerable.Range(0, Budget * 3).Select(i =>
        {
            var path = Path.Combine(_root, i.ToString(CultureInfo.InvariantCulture));
            File.WriteAllBytes(path, [(byte)i]);
            return cache.Add(path, handle: null);
        }).ToArray();

        var wrong = 0;
        Parallel.For(0, 4, t =>
        {
            var random = new Random(t);
            var one = new byte[1];
            for (var n = 0; n < 20_000; n++)
            {
                var i = random.Next(files.Length);
                using var lease = files[i].Lease();
                if (lease.Handle.IsClosed || RandomAccess.Read(lease.Handle, one, 0) != 1 || one[0] != i)
                {
                    Interlocked.Increment(ref wrong);
                }
            }
        });

        Assert.Equal(0, wrong);
        Assert.InRange(cache.OpenCount, 0, Budget);
        Assert.InRange(Descriptors(_root).All, 0, Budget);
        Assert.True(cache.Reopens > 0);
        foreach (var file in files)
        {
            file.Dispose();
        }

        Assert.Equal(0, cache.OpenCount);
        Assert.Equal(0, Descriptors(_root).All);
    }
}
