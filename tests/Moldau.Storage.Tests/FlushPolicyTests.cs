using Microsoft.Extensions.Time.Testing;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>Kafka's flush settings, when a topic or the broker sets them: flush.messages and flush.ms.</summary>
public sealed class FlushPolicyTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-flush-" + Guid.NewGuid().ToString("N")[..10]);

    private readonly SyncCounter _counter;
    private readonly StorageRuntime _runtime;

    public FlushPolicyTests()
    {
        // The runtime's file layer is this test's alone: no other test sees the counter.
        _counter = new SyncCounter(_dir);
        _runtime = new StorageRuntime(_counter);
    }

    public void Dispose()
    {
        _runtime.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>Counts the successful fsyncs of segment files in one directory, once counting is on.</summary>
    private sealed class SyncCounter(string directory) : IFileLayerObserver
    {
        private int _syncs;

        public int Syncs => Volatile.Read(ref _syncs);

        public volatile bool Counting;

        public void BeforeWrite(string path)
        {
        }

        public void Created(string path)
        {
        }

        public void Synced(string path, long length)
        {
            if (Counting && path.StartsWith(directory, StringComparison.Ordinal))
            {
                Interlocked.Increment(ref _syncs);
            }
        }

        public void DirectorySynced(string dir)
        {
        }
    }

    private static byte[] Batch(int records) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, records).Select(i => new RecordToWrite(null, [1, 2, 3], i)).ToList());

    [Fact]
    public void FlushMessagesSyncsOnceThatManyMessagesAreUnflushed()
    {
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { SyncBeforeAck = false, FlushMessages = 5 }, TimeProvider.System, _runtime);
        var counter = _counter;
        counter.Counting = true;
        log.Append(Batch(2), 0);
        log.Append(Batch(2), 0);
        Assert.Equal(0, counter.Syncs);
        Assert.Equal(4, log.HighWatermark); // the page cache is trusted, as in Kafka
        log.Append(Batch(1), 0);
        Assert.Equal(1, counter.Syncs); // the fifth message: synced before Append returned
        log.Append(Batch(4), 0);
        Assert.Equal(1, counter.Syncs);
        log.Append(Batch(3), 0);
        Assert.Equal(2, counter.Syncs);
    }

    [Fact]
    public async Task FlushMsSyncsWithinTheIntervalOfTheFirstUnflushedAppend()
    {
        var clock = new FakeTimeProvider();
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { SyncBeforeAck = false, FlushInterval = TimeSpan.FromSeconds(2) }, clock, _runtime);
        var counter = _counter;
        counter.Counting = true;
        log.Append(Batch(1), 0);
        clock.Advance(TimeSpan.FromSeconds(1));
        log.Append(Batch(1), 0);
        await Task.Delay(50);
        Assert.Equal(0, counter.Syncs);

        clock.Advance(TimeSpan.FromSeconds(1));
        for (var i = 0; i < 200 && counter.Syncs == 0; i++)
        {
            await Task.Delay(10);
        }

        Assert.Equal(1, counter.Syncs);

        // Nothing unflushed: no timer, no fsync.
        clock.Advance(TimeSpan.FromSeconds(5));
        await Task.Delay(50);
        Assert.Equal(1, counter.Syncs);
    }
}
