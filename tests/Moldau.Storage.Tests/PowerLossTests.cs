using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// A power loss keeps only what was fsynced (SIGKILL keeps the page cache, so it can't tell).
/// Through the <see cref="FileLayer"/> seam of the log's <see cref="StorageRuntime"/>, writes stop at a random moment, every byte not yet
/// synced is thrown away (and files whose directory entry was never synced vanish), the log
/// recovers, and every acks=all acknowledgement must still hold.
/// </summary>
public sealed class PowerLossTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-power-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    /// <summary>Remembers what is durable under one directory, and refuses writes once the power is off.</summary>
    private sealed class PowerLoss(string directory) : IFileLayerObserver
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, long> _synced = [];
        private readonly HashSet<string> _entryNotDurable = [];
        private volatile bool _off;

        public bool IsOff => _off;

        private bool Mine(string path) => path.StartsWith(directory, StringComparison.Ordinal);

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
            if (Mine(path))
            {
                lock (_lock)
                {
                    _synced[path] = Math.Max(length, _synced.GetValueOrDefault(path));
                }
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
                foreach (var file in Directory.GetFiles(directory))
                {
                    if (_entryNotDurable.Contains(file) || !file.EndsWith(".log", StringComparison.Ordinal))
                    {
                        // Never-synced directory entries vanish; index files and snapshots are never
                        // synced outside a clean stop, so their content is gone too.
                        File.Delete(file);
                    }
                    else if (_synced.TryGetValue(file, out var length))
                    {
                        using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
                        RandomAccess.SetLength(handle, Math.Min(length, RandomAccess.GetLength(handle)));
                    }
                    else
                    {
                        File.Delete(file);
                    }
                }
            }
        }
    }

    /// <summary>Producers append and wait for acks until the power goes; returns the acks seen before.</summary>
    private async Task<(List<(long Offset, string Value)> Acked, int Lost)> RunUntilPowerLoss(string dir, bool syncBeforeAck, int seed)
    {
        var power = new PowerLoss(dir);
        using var runtime = new StorageRuntime(power);
        var options = new PartitionLogOptions { SegmentBytes = 8 * 1024, SyncBeforeAck = syncBeforeAck };
        var log = PartitionLog.Open(dir, options, TimeProvider.System, runtime);
        var acked = new List<(long Offset, string Value)>();
        var producers = Enumerable.Range(0, 4).Select(p => Task.Run(async () =>
        {
            for (var n = 0; !power.IsOff; n++)
            {
                var value = $"p{p}-{n}";
                long offset;
                try
                {
                    offset = log.Append(RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), n)]), 0).BaseOffset;
                    await log.WaitDurableAsync(offset + 1);
                }
                catch (IOException)
                {
                    return;
                }

                lock (acked)
                {
                    if (!power.IsOff)
                    {
                        acked.Add((offset, value));
                    }
                }
            }
        })).ToArray();

        int AckedCount()
        {
            lock (acked)
            {
                return acked.Count;
            }
        }

        // Some acknowledgements first, then the cut at a random moment.
        for (var wait = 0; wait < 1000 && AckedCount() < 3; wait++)
        {
            await Task.Delay(10);
        }

        await Task.Delay(new Random(seed).Next(0, 250));
        power.PowerOff();
        await Task.WhenAny(Task.WhenAll(producers), Task.Delay(2000));
        await Task.Delay(100);
        log.Dispose(); // its flush fails: the power is off
        power.DropUnsynced();

        // The power is back: the recovered log runs on a runtime of its own, which no observer sees.

        using var recovered = PartitionLog.Open(dir, options, TimeProvider.System);
        var found = new Dictionary<long, string>();
        var expected = 0L;
        while (expected < recovered.LogEndOffset)
        {
            var bytes = recovered.Read(expected, 1, minOneBatch: true, long.MaxValue);
            Assert.True(bytes.Length > 0, $"a hole at offset {expected} below the recovered log end {recovered.LogEndOffset}");
            var batch = new RecordBatch(bytes[..(int)RecordBatch.DeclaredSize(bytes.Span)]);
            Assert.Equal(expected, batch.BaseOffset); // contiguous offsets
            foreach (var record in batch.GetRecords())
            {
                found[batch.BaseOffset + record.OffsetDelta] = Encoding.UTF8.GetString(record.Value!.Value.Span);
            }

            expected = batch.LastOffset + 1;
        }

        // Appends go on after the recovered end.
        var next = recovered.Append(RecordBatchBuilder.Build([new(null, [1], 1)]), 0);
        Assert.Equal(expected, next.BaseOffset);

        var lost = acked.Count(a => !found.TryGetValue(a.Offset, out var v) || v != a.Value);
        return (acked, lost);
    }

    [Fact]
    public async Task EveryAcknowledgedWriteSurvivesAPowerLoss()
    {
        for (var round = 0; round < 10; round++)
        {
            var (acked, lost) = await RunUntilPowerLoss(Path.Combine(_root, $"round-{round}"), syncBeforeAck: true, seed: round);
            Assert.True(acked.Count > 0, "no write was acknowledged before the power went");
            Assert.Equal(0, lost);
        }
    }

    [Fact]
    public async Task TheSeamCatchesAcknowledgementsThatWereNotSynced()
    {
        // Acknowledging from the page cache (Kafka's own default) loses acknowledged writes here:
        // proof that the test above would notice a missing fsync.
        var lostAny = false;
        for (var round = 0; round < 5 && !lostAny; round++)
        {
            var (_, lost) = await RunUntilPowerLoss(Path.Combine(_root, $"unsynced-{round}"), syncBeforeAck: false, seed: round);
            lostAny = lost > 0;
        }

        Assert.True(lostAny);
    }
}
