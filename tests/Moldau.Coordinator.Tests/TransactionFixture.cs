using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Moldau.Coordinator.Transactions;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Tests;

/// <summary>A transaction coordinator over in-memory __transaction_state partitions, a fake clock and a recording marker writer.</summary>
internal sealed class TransactionFixture : IAsyncDisposable
{
    public const int Partitions = 4;

    private long _nextProducerId;

    public TransactionFixture(FakeTimeProvider? time = null, MemoryCoordinatorLog[]? logs = null, TransactionCoordinatorOptions? options = null, RecordingMarkerWriter? markers = null, long firstProducerId = 1000)
    {
        Time = time ?? new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddYears(50));
        Logs = logs ?? Enumerable.Range(0, Partitions).Select(p => new MemoryCoordinatorLog($"__transaction_state-{p}")).ToArray();
        Options = options ?? new TransactionCoordinatorOptions { StateTopicPartitions = Partitions };
        Markers = markers ?? new RecordingMarkerWriter();
        _nextProducerId = firstProducerId;
        Coordinator = new TransactionCoordinator(Options, p => Logs[p], Markers, () => Interlocked.Increment(ref _nextProducerId) - 1, Time, NullLogger.Instance, p => 7);
        Coordinator.Start(Enumerable.Range(0, Partitions));
    }

    public FakeTimeProvider Time { get; }

    public MemoryCoordinatorLog[] Logs { get; }

    public TransactionCoordinatorOptions Options { get; }

    public RecordingMarkerWriter Markers { get; }

    public TransactionCoordinator Coordinator { get; }

    public MemoryCoordinatorLog LogOf(string id) => Logs[TransactionLog.PartitionFor(id, Partitions)];

    /// <summary>Every record of <paramref name="id"/>'s partition for it, decoded, in order (null: a tombstone).</summary>
    public List<TransactionRecord?> RecordsOf(string id)
    {
        var list = new List<TransactionRecord?>();
        Runtime.CoordinatorReplay.Records(LogOf(id), (k, v) =>
        {
            if (TransactionLog.Decode(k, v) is var (tid, r) && tid == id)
            {
                list.Add(r);
            }
        }, null, "test");
        return list;
    }

    /// <summary>A coordinator over the same partitions: what a restart loads.</summary>
    public TransactionFixture Restart(RecordingMarkerWriter? markers = null) => new(Time, Logs, Options, markers ?? new RecordingMarkerWriter(), _nextProducerId + 100);

    public async Task<InitProducerIdResult> InitAsync(string id, int timeoutMs = 60_000, long producerId = -1, short epoch = -1)
    {
        var r = await Coordinator.InitProducerIdAsync(id, timeoutMs, producerId, epoch).WaitAsync(TimeSpan.FromSeconds(10));
        return r;
    }

    /// <summary>Polls DescribeTransactions until <paramref name="id"/> is in <paramref name="state"/>, advancing the fake clock a little each time (marker retries wait on it).</summary>
    public async Task<TransactionDescription> WaitForStateAsync(string id, TransactionState state, TimeSpan? advance = null)
    {
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (true)
        {
            var d = await Coordinator.DescribeAsync(id).WaitAsync(TimeSpan.FromSeconds(10));
            if (d.State == state.Name())
            {
                return d;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{id} stayed {d.State}, expected {state.Name()}");
            }

            await Task.Delay(5);
            if (advance is { } by)
            {
                Time.Advance(by);
            }
        }
    }

    /// <summary>Advances the clock and lets every shard run what came due.</summary>
    public async Task AdvanceAsync(TimeSpan by)
    {
        Time.Advance(by);
        for (var p = 0; p < Partitions; p++)
        {
            await Coordinator.Runtime.IdleAsync(p);
        }
    }

    public ValueTask DisposeAsync() => Coordinator.DisposeAsync();
}

/// <summary>
/// Stands in for the partitions' side of WriteTxnMarkers in coordinator tests: records every
/// marker asked for; <see cref="Answer"/> decides each partition's error (None by default), and
/// <see cref="Hold"/> keeps writes pending (a crash before the markers are durable).
/// </summary>
internal sealed class RecordingMarkerWriter : ITransactionMarkerWriter
{
    private readonly Lock _lock = new();
    private TaskCompletionSource? _held;

    public List<(long ProducerId, short Epoch, int CoordinatorEpoch, ControlRecordType Result, string Topic, int Partition)> Written { get; } = [];

    /// <summary>The error for one partition's marker (called once per attempt).</summary>
    public Func<string, int, ErrorCode> Answer { get; set; } = (_, _) => ErrorCode.None;

    public int Attempts { get; private set; }

    public void Hold() => _held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Lets the writes held since <see cref="Hold"/> go on (the markers become durable), and stops holding.</summary>
    public void Release()
    {
        var held = _held;
        _held = null;
        held?.TrySetResult();
    }

    public List<(long ProducerId, short Epoch, int CoordinatorEpoch, ControlRecordType Result, string Topic, int Partition)> Snapshot()
    {
        lock (_lock)
        {
            return [.. Written];
        }
    }

    public async Task<IReadOnlyList<(string Topic, int Partition, ErrorCode Error)>> WriteMarkersAsync(long producerId, short producerEpoch, int coordinatorEpoch, ControlRecordType result, IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        lock (_lock)
        {
            Attempts++;
        }

        if (_held is { } held)
        {
            await held.Task;
        }

        var errors = new List<(string, int, ErrorCode)>();
        foreach (var (topic, partition) in partitions)
        {
            var error = Answer(topic, partition);
            if (error == ErrorCode.None)
            {
                lock (_lock)
                {
                    Written.Add((producerId, producerEpoch, coordinatorEpoch, result, topic, partition));
                }
            }

            errors.Add((topic, partition, error));
        }

        return errors;
    }
}
