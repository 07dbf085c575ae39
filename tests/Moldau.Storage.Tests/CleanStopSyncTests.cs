using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// A clean stop writes every log's files without an fsync each and syncs the file system once
/// (<see cref="LocalLogManager.Dispose"/>, <see cref="FileSystemSync"/>): the marker comes only
/// after that sync succeeded, so a failed sync, or a crash at any point of the stop, leaves a log
/// dir that the next start reads through, with every record that was written.
/// </summary>
public sealed class CleanStopSyncTests : IDisposable
{
    private const int Partitions = 6;
    private const int BatchesEach = 10;

    private readonly string _base = Path.Combine(Path.GetTempPath(), "moldau-stopsync-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly Uuid _topicId = Uuid.NewRandom();

    public void Dispose()
    {
        if (Directory.Exists(_base))
        {
            Directory.Delete(_base, recursive: true);
        }
    }

    /// <summary>
    /// The seam: fails the <c>syncfs</c> of one log dir (a write-back error the kernel reported),
    /// or, once the stop began, lets <see cref="KillAt"/> writes and syncs through and refuses every
    /// later one, as if the process died there (the page cache keeps what was written, as after kill -9).
    /// </summary>
    private sealed class Seam : IFileLayerObserver
    {
        private int _writes;

        public string? FailSyncOf { get; set; }

        public int KillAt { get; set; } = int.MaxValue;

        public bool Stopping { get; set; }

        public int Writes => Volatile.Read(ref _writes);

        public List<string> FileSystemsSynced { get; } = [];

        public void BeforeWrite(string path)
        {
            if (path == FailSyncOf)
            {
                throw new IOException("syncfs: Input/output error (injected)");
            }

            if (Stopping && Interlocked.Increment(ref _writes) > KillAt)
            {
                throw new IOException("the process is gone (injected)");
            }
        }

        public void Created(string path)
        {
        }

        public void Synced(string path, long length)
        {
        }

        public void DirectorySynced(string directory)
        {
        }

        public void FileSystemSynced(string directory)
        {
            lock (FileSystemsSynced)
            {
                FileSystemsSynced.Add(directory);
            }
        }
    }

    private static PartitionLogOptions Options(LogOpenState state) => new()
    {
        SyncBeforeAck = true,
        DirectIo = true,
        IndexIntervalBytes = 100,
        FlushLinger = TimeSpan.FromHours(1), // acks=1 appends stay unflushed until the stop
        CleanShutdown = state.CleanShutdown,
        RecoveryPoint = state.RecoveryPoint,
    };

    private static byte[] Batch(int partition, int i) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes($"p{partition}-v{i}-" + new string('x', 80)), 1000 + i)]);

    private LogPartition Partition(int i) => new("t", _topicId, i);

    /// <summary>
    /// Creates the partitions in <paramref name="root"/> and writes <see cref="BatchesEach"/> batches
    /// to each: acks=1 (written, not synced) except partition 0, whose first batch is acks=all.
    /// Then stops, with the seam told that the stop began.
    /// </summary>
    private async Task WriteAndStopAsync(string root, Seam seam)
    {
        using var runtime = new StorageRuntime(seam);
        var manager = new LocalLogManager([root], (_, state) => Options(state), TimeProvider.System, NullLogger.Instance, runtime);
        var logs = manager.Create([.. Enumerable.Range(0, Partitions).Select(Partition)], new Dictionary<string, string>());
        for (var p = 0; p < Partitions; p++)
        {
            logs[p].StartEpoch(0);
            for (var i = 0; i < BatchesEach; i++)
            {
                var offset = logs[p].Append(Batch(p, i), 0).BaseOffset;
                if (p == 0 && i == 0)
                {
                    await logs[p].WaitDurableAsync(offset + 1);
                }
            }
        }

        seam.Stopping = true;
        manager.Dispose();
    }

    /// <summary>Opens every partition again and checks that each holds all its records; returns whether the log dir was marked clean.</summary>
    private bool ReopenAndCheckEverything(string root, Action<LocalLogManager>? before = null)
    {
        var marked = File.Exists(Path.Combine(root, LocalLogManager.CleanShutdownFile));
        var again = new LocalLogManager([root], (_, state) => Options(state), TimeProvider.System, NullLogger.Instance);
        try
        {
            before?.Invoke(again);
            for (var p = 0; p < Partitions; p++)
            {
                var log = again.Open(Partition(p), new Dictionary<string, string>());
                Assert.Equal(BatchesEach, log.LogEndOffset);
                var values = new List<string>();
                var bytes = log.Read(0, 1 << 20, minOneBatch: true, long.MaxValue).ToArray();
                for (var at = 0; at < bytes.Length; at += (int)RecordBatch.DeclaredSize(bytes.AsSpan(at)))
                {
                    var batch = new RecordBatch(bytes.AsMemory(at, (int)RecordBatch.DeclaredSize(bytes.AsSpan(at))));
                    foreach (var record in batch.GetRecords())
                    {
                        values.Add(Encoding.UTF8.GetString(record.Value!.Value.Span));
                    }
                }

                Assert.Equal([.. Enumerable.Range(0, BatchesEach).Select(i => $"p{p}-v{i}")], values.Select(v => v[..v.IndexOf('-', 3)]));
                Assert.Equal(BatchesEach, log.Append(Batch(p, BatchesEach), 0).BaseOffset);
            }
        }
        finally
        {
            again.Dispose();
        }

        return marked;
    }

    /// <summary>Flips a byte inside the third batch of partition 0's segment: a start that reads the log through cuts the log there; one that trusts the files does not notice.</summary>
    private static void DamageAMiddleBatch(string root)
    {
        var path = Path.Combine(root, "t-0", "00000000000000000000.log");
        var bytes = File.ReadAllBytes(path);
        var third = 2 * Batch(0, 0).Length;
        bytes[third + Batch(0, 0).Length - 5] ^= 0x55;
        File.WriteAllBytes(path, bytes);
    }

    [Fact]
    public async Task ACleanStopSyncsTheFileSystemOnceAndTheNextStartTrustsTheFiles()
    {
        var root = Path.Combine(_base, "clean");
        var seam = new Seam();
        await WriteAndStopAsync(root, seam);

        Assert.True(FileSystemSync.Supported, "these tests need Linux 5.8 or later");
        Assert.Equal([root], seam.FileSystemsSynced);
        Assert.True(File.Exists(Path.Combine(root, LocalLogManager.CleanShutdownFile)));

        // The recovery points moved to the log ends only with the file system's sync; the
        // producer snapshots and leader-epoch checkpoints were written by the closes.
        var recoveryPoints = LogStartOffsetCheckpoint.Read(root, LogStartOffsetCheckpoint.RecoveryPointFileName);
        for (var p = 0; p < Partitions; p++)
        {
            Assert.Equal(BatchesEach, recoveryPoints[("t", p)]);
            var dir = Path.Combine(root, $"t-{p}");
            Assert.True(File.Exists(Path.Combine(dir, ProducerStateTable.SnapshotFileName(BatchesEach))));
            Assert.Equal("0\n1\n0 0\n", await File.ReadAllTextAsync(Path.Combine(dir, LeaderEpochCache.FileName)));
            Assert.True(new FileInfo(Path.Combine(dir, "00000000000000000000.index")).Length > 0);
        }

        // The marker is honoured: damage a middle batch, and the clean start does not read that far.
        var size = new FileInfo(Path.Combine(root, "t-0", "00000000000000000000.log")).Length;
        Assert.Equal(BatchesEach * Batch(0, 0).Length, size); // cut back to its batches (no direct-I/O padding)
        DamageAMiddleBatch(root);
        using (var log = PartitionLog.Open(Path.Combine(root, "t-0"), Options(new LogOpenState(root, true, BatchesEach, 0)), TimeProvider.System))
        {
            Assert.Equal(BatchesEach, log.LogEndOffset);
            Assert.Equal(0, log.RecoveredTruncatedBytes);
            Assert.False(log.RecoveryLostRecords);
            Assert.Null(log.CorruptionAfterCleanStop);
        }
    }

    [Fact]
    public async Task AFailedFileSystemSyncLeavesNoMarkerAndTheNextStartRecoversEverything()
    {
        var root = Path.Combine(_base, "failed");
        var seam = new Seam { FailSyncOf = root };
        await WriteAndStopAsync(root, seam);

        Assert.Empty(seam.FileSystemsSynced);
        Assert.False(File.Exists(Path.Combine(root, LocalLogManager.CleanShutdownFile)));

        // No recovery point names data that was not synced: only partition 0's acks=all batch was.
        var recoveryPoints = LogStartOffsetCheckpoint.Read(root, LogStartOffsetCheckpoint.RecoveryPointFileName);
        Assert.Equal(1, recoveryPoints[("t", 0)]);
        Assert.Single(recoveryPoints);

        // The page cache kept everything (the sync failed, the process did not die): all there.
        Assert.False(ReopenAndCheckEverything(root));
    }

    [Fact]
    public async Task AnUncleanStartAfterAFailedSyncReadsTheLogThrough()
    {
        var root = Path.Combine(_base, "failed-read");
        await WriteAndStopAsync(root, new Seam { FailSyncOf = root });
        DamageAMiddleBatch(root);

        var again = new LocalLogManager([root], (_, state) => Options(state), TimeProvider.System, NullLogger.Instance);
        try
        {
            var log = (PartitionLog)again.Open(Partition(0), new Dictionary<string, string>());

            // Read through, and cut at the damaged batch (offsets past it are not handed out again).
            Assert.Equal((BatchesEach - 2) * Batch(0, 0).Length, log.RecoveredTruncatedBytes);
            Assert.True(log.RecoveryLostRecords);
        }
        finally
        {
            again.Dispose();
        }
    }

    [Fact]
    public async Task ACrashAtAnyPointOfTheStopLosesNothingWritten()
    {
        // How many writes and syncs a whole stop makes through the seam (trims, snapshots, the
        // file system's sync, the marker), then a crash after each number of them in turn.
        var counting = new Seam();
        await WriteAndStopAsync(Path.Combine(_base, "count"), counting);
        var total = counting.Writes;
        Assert.True(total > Partitions, $"only {total} writes through the seam");

        for (var killAt = 0; killAt <= total; killAt++)
        {
            var root = Path.Combine(_base, $"kill-{killAt}");
            var seam = new Seam { KillAt = killAt };
            await WriteAndStopAsync(root, seam);
            var marked = ReopenAndCheckEverything(root);

            // Only a stop that reached its last write (the marker) may leave one.
            Assert.Equal(killAt == total, marked);
            Directory.Delete(root, recursive: true);
        }
    }
}
