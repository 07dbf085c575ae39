using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// New partitions are created without an fsync of their own files (<see cref="LocalLogManager.Create"/>,
/// <see cref="PartitionLog.CreateNew"/>): a power loss right after keeps only what was synced, and
/// every partition still opens (empty, or with each acknowledged write), takes appends, and gets its
/// <c>partition.metadata</c> back. (A kill -9 keeps the page cache, so only this seam can tell.)
/// </summary>
public sealed class PartitionCreationPowerLossTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-create-power-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    /// <summary>
    /// Remembers which files under the log dir were synced and whose directory entries were, and
    /// refuses writes once the power is off. Only segment data counts as synced: every other file
    /// (indexes, checkpoints, partition.metadata) is taken as lost, the worst a power loss can do.
    /// </summary>
    private sealed class PowerLoss(string root) : IFileLayerObserver
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, long> _synced = [];
        private readonly HashSet<string> _entryNotDurable = [];
        private volatile bool _off;

        private bool Mine(string path) => path.StartsWith(root, StringComparison.Ordinal);

        public void BeforeWrite(string path)
        {
            if (_off && Mine(path))
            {
                throw new IOException("the power is off");
            }
        }

        public void Created(string path)
        {
            if (Mine(path))
            {
                lock (_lock)
                {
                    _entryNotDurable.Add(path);
                    _synced[path] = 0;
                }
            }
        }

        public void Synced(string path, long length)
        {
            lock (_lock)
            {
                _synced[path] = Math.Max(length, _synced.GetValueOrDefault(path));
            }
        }

        public void DirectorySynced(string dir)
        {
            lock (_lock)
            {
                _entryNotDurable.RemoveWhere(p => Path.GetDirectoryName(p) == dir);
            }
        }

        public void PowerOff() => _off = true;

        /// <summary>What the disk holds after the power came back.</summary>
        public void DropUnsynced()
        {
            lock (_lock)
            {
                foreach (var file in Directory.GetFiles(root, "*", SearchOption.AllDirectories).Where(f => Path.GetDirectoryName(f) != root))
                {
                    if (_entryNotDurable.Contains(file) || !file.EndsWith(".log", StringComparison.Ordinal) || !_synced.TryGetValue(file, out var length))
                    {
                        File.Delete(file);
                    }
                    else
                    {
                        using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
                        RandomAccess.SetLength(handle, Math.Min(length, RandomAccess.GetLength(handle)));
                    }
                }
            }
        }
    }

    private static PartitionLogOptions Options() => new() { SyncBeforeAck = true, DirectIo = true };

    private static byte[] Batch(string value) => RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), 1)]);

    [Fact]
    public async Task NewPartitionsOpenAfterAPowerLossWithEveryAcknowledgedWrite()
    {
        const int count = 24;
        var power = new PowerLoss(_root);
        var topicId = Uuid.NewRandom();
        var partitions = Enumerable.Range(0, count).Select(i => new LogPartition("t", topicId, i)).ToList();
        using (var runtime = new StorageRuntime(power))
        {
            var manager = new LocalLogManager([_root], (_, _) => Options(), TimeProvider.System, NullLogger.Instance, runtime);
            var logs = manager.Create(partitions, new Dictionary<string, string>());
            Assert.Equal(count, logs.Count);
            foreach (var log in logs)
            {
                log.StartEpoch(0);
            }

            // Nothing of a new log was fsynced: its segment's directory entry is not durable yet.
            Assert.False(File.Exists(Path.Combine(_root, "t-0", LeaderEpochCache.FileName)));

            // acks=all writes to every third partition.
            for (var i = 0; i < count; i += 3)
            {
                var offset = logs[i].Append(Batch($"v{i}"), 0).BaseOffset;
                await logs[i].WaitDurableAsync(offset + 1);
            }

            power.PowerOff();
            manager.Dispose(); // every flush fails: the power is off
        }

        power.DropUnsynced();

        // A partition directory missing altogether (had the log dir's fsync not been reached).
        Directory.Delete(Path.Combine(_root, "t-1"), recursive: true);

        // The power is back: every partition opens, as its metadata says it exists.
        var again = new LocalLogManager([_root], (_, _) => Options(), TimeProvider.System, NullLogger.Instance);
        try
        {
            for (var i = 0; i < count; i++)
            {
                var log = again.Open(partitions[i], new Dictionary<string, string>());
                log.StartEpoch(0);
                var written = i % 3 == 0;
                Assert.Equal(written ? 1 : 0, log.LogEndOffset);
                if (written)
                {
                    var bytes = log.Read(0, 1 << 20, minOneBatch: true, long.MaxValue);
                    var values = new List<string>();
                    foreach (var record in new RecordBatch(bytes).GetRecords())
                    {
                        values.Add(Encoding.UTF8.GetString(record.Value!.Value.Span));
                    }

                    Assert.Equal([$"v{i}"], values);
                    Assert.Equal(0, log.EpochForOffset(0));
                }

                Assert.Equal(log.LogEndOffset, log.Append(Batch("after"), 0).BaseOffset);
                Assert.Equal(topicId, PartitionMetadataFile.Read(Path.Combine(_root, $"t-{i}")));
            }
        }
        finally
        {
            again.Dispose();
        }

        // Closed cleanly: each directory looks as Kafka's does.
        foreach (var i in new[] { 0, 1, 2 })
        {
            var dir = Path.Combine(_root, $"t-{i}");
            Assert.Equal("0\n1\n0 0\n", await File.ReadAllTextAsync(Path.Combine(dir, LeaderEpochCache.FileName)));
            Assert.True(File.Exists(Path.Combine(dir, "00000000000000000000.log")));
            Assert.True(File.Exists(Path.Combine(dir, "00000000000000000000.index")));
            Assert.True(File.Exists(Path.Combine(dir, "00000000000000000000.timeindex")));
        }
    }

    [Fact]
    public async Task ANewLogWritesItsLeaderEpochCheckpointAtItsFirstFlush()
    {
        var dir = Path.Combine(_root, "p-0");
        using var log = PartitionLog.CreateNew(dir, Options(), TimeProvider.System, runtime: null);
        log.StartEpoch(0);
        var checkpoint = Path.Combine(dir, LeaderEpochCache.FileName);
        Assert.False(File.Exists(checkpoint));
        Assert.Equal(0, log.EndOffsetForEpoch(0).Epoch);

        var offset = log.Append(Batch("a"), 0).BaseOffset;
        await log.WaitDurableAsync(offset + 1);
        Assert.Equal("0\n1\n0 0\n", await File.ReadAllTextAsync(checkpoint));

        // From then on every new epoch is written at once, as before.
        log.StartEpoch(1);
        Assert.Equal("0\n2\n0 0\n1 1\n", await File.ReadAllTextAsync(checkpoint));
    }
}
