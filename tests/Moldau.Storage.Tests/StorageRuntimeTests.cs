using System.Buffers;
using System.Collections.Concurrent;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// Two storage runtimes in one process, as two brokers (or two tests) have them: each log's file
/// writes and syncs reach only its own runtime's file layer, a power loss in one leaves the other
/// alone, and one runtime disposed with its logs leaves the other's threads and buffers working.
/// </summary>
public sealed class StorageRuntimeTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-runtime-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    /// <summary>Every path the runtime's file layer saw, and optionally a power switch.</summary>
    private sealed class Recorder : IFileLayerObserver
    {
        private int _syncs;
        private volatile bool _off;

        public ConcurrentBag<string> Paths { get; } = [];

        public int Syncs => Volatile.Read(ref _syncs);

        public void PowerOff() => _off = true;

        public void BeforeWrite(string path)
        {
            Paths.Add(path);
            if (_off)
            {
                throw new IOException("the power is off");
            }
        }

        public void Created(string path) => Paths.Add(path);

        public void Synced(string path, long length)
        {
            Paths.Add(path);
            Interlocked.Increment(ref _syncs);
        }

        public void DirectorySynced(string directory) => Paths.Add(directory);
    }

    private static byte[] Batch(int n, int size = 100) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, 1 + (n % 4)).Select(i => new RecordToWrite(null, Enumerable.Repeat((byte)(n + i), size).ToArray(), 1000 + n)).ToList());

    // acks=all: the append waits for the fsync, which runs on a flusher thread of the log's runtime.
    private static async Task AppendDurably(PartitionLog log, byte[] batch)
    {
        var offset = log.Append(batch.ToArray(), 0, durabilityWanted: true).BaseOffset;
        var durable = log.WaitDurableAsync(offset + 1);
        Assert.Same(durable, await Task.WhenAny(durable, Task.Delay(TimeSpan.FromSeconds(30))));
        await durable;
    }

    private static PartitionLogOptions Options => new() { SegmentBytes = 4L << 20, SyncBeforeAck = true };

    [Fact]
    public async Task TwoRuntimesRunSideBySideAndOneDisposedLeavesTheOtherWorking()
    {
        string dirA = Path.Combine(_root, "a"), dirB = Path.Combine(_root, "b");
        var recordA = new Recorder();
        var recordB = new Recorder();
        var runtimeA = new StorageRuntime(recordA);
        using var runtimeB = new StorageRuntime(recordB);
        var logA = PartitionLog.Open(dirA, Options, TimeProvider.System, runtimeA);
        using var logB = PartitionLog.Open(dirB, Options, TimeProvider.System, runtimeB);
        var appendedB = new List<byte[]>();
        for (var i = 0; i < 20; i++)
        {
            await AppendDurably(logA, Batch(i));
            appendedB.Add(Batch(100 + i));
            await AppendDurably(logB, appendedB[^1]);
        }

        // Each runtime's file layer saw its own log's files, and no other.
        Assert.NotEmpty(recordA.Paths);
        Assert.NotEmpty(recordB.Paths);
        Assert.All(recordA.Paths, p => Assert.StartsWith(dirA, p, StringComparison.Ordinal));
        Assert.All(recordB.Paths, p => Assert.StartsWith(dirB, p, StringComparison.Ordinal));

        // A closes, its runtime with it: threads told to end, pooled buffers freed, sweep stopped.
        logA.Dispose();
        runtimeA.Dispose();
        Assert.True(runtimeA.IsDisposed);
        var syncsOfA = recordA.Syncs;

        // B goes on: its fsyncs still run on its own flusher threads, its direct reads and
        // read-ahead on its own pool and reader threads.
        string? flushedOn = null;
        logB.OnHighWatermarkAdvanced = () => flushedOn = Thread.CurrentThread.Name;
        for (var i = 0; i < 40; i++)
        {
            appendedB.Add(Batch(200 + i, size: 30_000));
            await AppendDurably(logB, appendedB[^1]);
        }

        Assert.NotNull(flushedOn);
        Assert.StartsWith("moldau-flusher", flushedOn, StringComparison.Ordinal);
        Assert.Equal(syncsOfA, recordA.Syncs);

        var rented = new List<byte[]>();
        var offset = 0L;
        var seen = 0;
        while (offset < logB.HighWatermark)
        {
            var bytes = logB.Read(offset, 1 << 20, wholeFirstBatchUpTo: long.MaxValue, logB.HighWatermark, rented);
            Assert.False(bytes.IsEmpty);
            for (var at = 0; at < bytes.Length;)
            {
                var batch = new RecordBatch(bytes.Slice(at, (int)RecordBatch.DeclaredSize(bytes.Span[at..])));
                Assert.True(batch.IsCrcValid());
                Assert.True(batch.RecordsSection.Span.SequenceEqual(appendedB[seen].AsSpan(RecordBatch.HeaderSize)), $"batch {seen} differs");
                offset = batch.LastOffset + 1;
                at += batch.TotalSize;
                seen++;
            }
        }

        Assert.Equal(appendedB.Count, seen);
        foreach (var buffer in rented)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [Fact]
    public async Task APowerLossInOneRuntimeLeavesTheOtherAlone()
    {
        string dirA = Path.Combine(_root, "a"), dirB = Path.Combine(_root, "b");
        var recordA = new Recorder();
        using var runtimeA = new StorageRuntime(recordA);
        using var runtimeB = new StorageRuntime(new Recorder());
        using var logA = PartitionLog.Open(dirA, Options, TimeProvider.System, runtimeA);
        using var logB = PartitionLog.Open(dirB, Options, TimeProvider.System, runtimeB);
        await AppendDurably(logA, Batch(1));
        var endOfA = logA.LogEndOffset;

        recordA.PowerOff();
        Assert.Throws<IOException>(() => logA.Append(Batch(2), 0));
        var records = 0;
        for (var i = 0; i < 10; i++)
        {
            var batch = Batch(i);
            records += new RecordBatch(batch).RecordCount;
            await AppendDurably(logB, batch);
        }

        Assert.Equal(records, logB.HighWatermark);
        Assert.Equal(endOfA, logA.LogEndOffset);
        Assert.NotNull(logA.StorageError);
        Assert.Null(logB.StorageError);
    }

    [Fact]
    public void ALogIsNotOpenedOnADisposedRuntime()
    {
        var runtime = new StorageRuntime();
        runtime.Dispose();
        Assert.Throws<ObjectDisposedException>(() => PartitionLog.Open(Path.Combine(_root, "late"), Options, TimeProvider.System, runtime));
    }
}
