using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// The runtime's cache of open segment files under a budget far below the files its logs have:
/// cold files are closed and reopened by their next use, a leased file is never closed under its
/// user, and logs appended to and read across closes and reopens hold the same bytes, index files
/// included, as a log whose files all stayed open; after a clean close and after a crash.
/// </summary>
public sealed class FileCacheTests : IDisposable
{
    private const int Budget = FileCache.MinimumBudget;
    private const int Partitions = 30;
    private const int Batches = 60;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-fdcache-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private static PartitionLogOptions Options(bool clean = false) =>
        new() { SegmentBytes = 8 * 1024, IndexIntervalBytes = 512, SyncBeforeAck = false, CleanShutdown = clean };

    private static byte[] Batch(int n) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, 1 + (n % 3)).Select(i => new RecordToWrite(null, Enumerable.Repeat((byte)(n + i), 200).ToArray(), 1000 + n)).ToList());

    private static void AssertEveryOffsetReads(PartitionLog log)
    {
        Assert.True(log.LogEndOffset > Batches);
        for (var offset = 0L; offset < log.LogEndOffset; offset++)
        {
            var bytes = log.Read(offset, 1, minOneBatch: true, long.MaxValue);
            Assert.False(bytes.IsEmpty, $"offset {offset}");
            var header = new RecordBatchHeader(bytes.Span);
            Assert.InRange(offset, header.BaseOffset, header.LastOffset);
            Assert.True(header.IsCrcValid());
        }
    }

    private (PartitionLog Reference, PartitionLog[] Logs) AppendEverywhere(StorageRuntime large, StorageRuntime small)
    {
        var reference = PartitionLog.Open(Path.Combine(_root, "reference"), Options(), TimeProvider.System, large);
        var logs = Enumerable.Range(0, Partitions)
            .Select(p => PartitionLog.Open(Path.Combine(_root, "p" + p), Options(), TimeProvider.System, small))
            .ToArray();

        // Round-robin: each partition's files are evicted between two of its appends.
        for (var n = 0; n < Batches; n++)
        {
            reference.Append(Batch(n), 0);
            foreach (var log in logs)
            {
                log.Append(Batch(n), 0);
                Assert.InRange(small.OpenFiles.OpenCount, 0, Budget);
            }
        }

        return (reference, logs);
    }

    [Fact]
    public void ALeasedFileStaysOpenWhileColdOnesAreClosedAndReopenedOnUse()
    {
        Directory.CreateDirectory(_root);
        using var cache = new FileCache(Budget);
        var files = Enumerable.Range(0, Budget * 2).Select(i =>
        {
            var path = Path.Combine(_root, i + ".f");
            File.WriteAllBytes(path, [(byte)i]);
            return cache.Add(path, handle: null);
        }).ToArray();

        var one = new byte[1];
        using (var held = files[0].Lease())
        {
            foreach (var file in files.Skip(1))
            {
                using var lease = file.Lease();
                Assert.Equal(1, RandomAccess.Read(lease.Handle, one, 0));
            }

            // Over budget by the leased file alone would be allowed; here the cold ones made room.
            Assert.Equal(Budget, cache.OpenCount);
            Assert.True(files[0].IsOpen);
            Assert.False(held.Handle.IsClosed);
            Assert.False(files[1].IsOpen);
            Assert.True(cache.Evictions >= Budget - 1);
        }

        // Reopened by use, with what was written through a handle since closed.
        using (var lease = files[1].Lease())
        {
            RandomAccess.Write(lease.Handle, new byte[] { 42 }, 1);
        }

        foreach (var file in files.Skip(2))
        {
            using var lease = file.Lease();
        }

        Assert.False(files[1].IsOpen);
        Assert.Equal([1, 42], File.ReadAllBytes(files[1].Path));
        Assert.Equal(Budget, FileCache.BudgetFor(1));
        Assert.Equal(1000, FileCache.BudgetFor(1000));
        Assert.True(FileCache.BudgetFor(-1) >= Budget);
    }

    [Fact]
    public void LogsUnderATinyBudgetAppendReadAndReopenCleanlyWithTheSameFilesAsOpenOnes()
    {
        using var large = new StorageRuntime(openFilesMax: 100_000);
        var small = new StorageRuntime(openFilesMax: Budget);
        var (reference, logs) = AppendEverywhere(large, small);
        Assert.True(small.OpenFiles.Evictions > Partitions);
        foreach (var log in logs)
        {
            AssertEveryOffsetReads(log);
            Assert.Equal(reference.LogEndOffset, log.LogEndOffset);
        }

        reference.Dispose();
        foreach (var log in logs)
        {
            log.Dispose();
        }

        small.Dispose();

        // Every file, the index files written through reopened handles included, is byte for byte
        // the reference's.
        var expected = Directory.GetFiles(Path.Combine(_root, "reference"), "0*").Select(Path.GetFileName).Order().ToArray();
        Assert.Contains(expected, f => f!.EndsWith(".index", StringComparison.Ordinal));
        Assert.True(expected.Length > 6);
        for (var p = 0; p < Partitions; p++)
        {
            var dir = Path.Combine(_root, "p" + p);
            Assert.Equal(expected, Directory.GetFiles(dir, "0*").Select(Path.GetFileName).Order().ToArray());
            foreach (var name in expected)
            {
                Assert.Equal(File.ReadAllBytes(Path.Combine(_root, "reference", name!)), File.ReadAllBytes(Path.Combine(dir, name!)));
            }
        }

        // A clean restart under the same budget loads those index files and reads everything.
        using var again = new StorageRuntime(openFilesMax: Budget);
        for (var p = 0; p < Partitions; p++)
        {
            using var log = PartitionLog.Open(Path.Combine(_root, "p" + p), Options(clean: true), TimeProvider.System, again);
            AssertEveryOffsetReads(log);
            log.Append(Batch(1000 + p), 0);
            Assert.InRange(again.OpenFiles.OpenCount, 0, Budget);
        }
    }

    [Fact]
    public void LogsUnderATinyBudgetRecoverFromACrash()
    {
        using var large = new StorageRuntime(openFilesMax: 100_000);
        using var small = new StorageRuntime(openFilesMax: Budget);
        var (reference, logs) = AppendEverywhere(large, small);
        foreach (var log in logs)
        {
            log.Flush();
        }

        // The crash: the files as they are now, with no clean close, opened by a new runtime.
        var crashed = Path.Combine(_root, "crashed");
        for (var p = 0; p < Partitions; p++)
        {
            var copy = Path.Combine(crashed, "p" + p);
            Directory.CreateDirectory(copy);
            foreach (var file in Directory.GetFiles(Path.Combine(_root, "p" + p)))
            {
                File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
            }
        }

        using var after = new StorageRuntime(openFilesMax: Budget);
        for (var p = 0; p < Partitions; p++)
        {
            using var log = PartitionLog.Open(Path.Combine(crashed, "p" + p), Options(), TimeProvider.System, after);
            Assert.Equal(reference.LogEndOffset, log.LogEndOffset);
            AssertEveryOffsetReads(log);
            Assert.InRange(after.OpenFiles.OpenCount, 0, Budget);
        }

        reference.Dispose();
        foreach (var log in logs)
        {
            log.Dispose();
        }
    }
}
