using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Runtime;

/// <summary>
/// Runs a coordinator as Kafka's <c>CoordinatorRuntime</c> does: one shard per partition of the
/// coordinator's topic, each with its own state, its own timer and its own turn (one operation
/// at a time per shard; shards never wait for each other, and there is no global lock).
/// </summary>
/// <remarks>
/// A write operation runs against the shard's state and returns records plus a response
/// (<see cref="CoordinatorResult{T}"/>). The runtime appends the records to the shard's
/// partition, waits for them to be durable (an <c>await</c>, no lock held: other shards go on,
/// this shard's next operations queue), applies them through <see cref="ICoordinatorShard.Replay"/>
/// (the code that loads the partition) and completes the response. If the append or the fsync
/// fails nothing is applied, and the response is the operation's answer for the error Kafka gives
/// (COORDINATOR_NOT_AVAILABLE when the partition is not there, NOT_COORDINATOR for a storage
/// error). Because a shard's next operation starts only after the previous one's records are
/// applied, every operation, reads included, sees committed state. The one exception is a result
/// marked <see cref="CoordinatorResult{T}.AppliedOnAppend"/>: applied once appended, for records
/// whose loss a load repairs; every later record of the shard that is waited for makes it durable
/// too (one log, appended in order, fsynced as a whole).
/// </remarks>
/// <typeparam name="TShard">The shard state (groups and offsets for the group coordinator).</typeparam>
public sealed class CoordinatorRuntime<TShard> : IAsyncDisposable
    where TShard : class, ICoordinatorShard
{
    // The attributes of a transactional data batch (bit 4, RecordBatch v2), uncompressed.
    private const short TransactionalAttributes = 0x10;

    private readonly Shard[] _shards;
    private readonly Func<int, ICoordinatorLog?> _logs;
    private readonly ILogger _log;
    private readonly string _topic;
    private readonly TimeProvider _time;
    private volatile bool _loaded;

    /// <summary>Creates the runtime; <see cref="Load"/> replays the partitions that exist.</summary>
    /// <param name="topic">The coordinator's topic, for log lines.</param>
    /// <param name="partitions">How many shards (the topic's partition count).</param>
    /// <param name="logs">The partition a shard writes to (created on first use by the caller if need be); null or <see cref="IOException"/> when it is not available.</param>
    /// <param name="createShard">Makes a shard's empty state.</param>
    /// <param name="time">The clock the timers run on.</param>
    /// <param name="log">Where to log.</param>
    public CoordinatorRuntime(string topic, int partitions, Func<int, ICoordinatorLog?> logs, Func<CoordinatorShardContext<TShard>, TShard> createShard, TimeProvider time, ILogger log)
    {
        _topic = topic;
        _time = time;
        _logs = logs;
        _log = log;
        _shards = new Shard[partitions];
        for (var i = 0; i < partitions; i++)
        {
            _shards[i] = new Shard(this, i, time, createShard);
        }
    }

    /// <summary>How many shards there are.</summary>
    public int ShardCount => _shards.Length;

    /// <summary>
    /// Replays each listed partition into its shard (records of a batch that does not decode are
    /// skipped with one warning, and the load goes on), then tells every shard it is loaded.
    /// </summary>
    public void Load(IEnumerable<int> existingPartitions)
    {
        foreach (var p in existingPartitions)
        {
            if ((uint)p >= (uint)_shards.Length)
            {
                continue;
            }

            ICoordinatorLog? log;
            try
            {
                log = _logs(p);
            }
            catch (IOException e)
            {
                _log.LogError("{Topic}-{Partition} could not be loaded: {Error}", _topic, p, e.Message);
                continue;
            }

            if (log is not null)
            {
                var shard = _shards[p].State;
                CoordinatorReplay.Records(
                    log,
                    (in CoordinatorRecordOrigin origin, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value) => shard.Replay(in origin, key, value),
                    shard.ReplayEndTransaction,
                    _log,
                    _topic);
            }
        }

        foreach (var s in _shards)
        {
            s.State.OnLoaded();
        }

        _loaded = true;
    }

    /// <summary>Runs a write operation in shard <paramref name="partition"/>'s turn; completes with its response once its records are durable and applied.</summary>
    public Task<T> WriteAsync<T>(int partition, Func<TShard, CoordinatorResult<T>> operation)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        _shards[partition].Enqueue(() => _shards[partition].RunWriteAsync(operation, done));
        return done.Task;
    }

    /// <summary>
    /// Ends a transaction in shard <paramref name="partition"/>, as Kafka's
    /// <c>scheduleTransactionCompletion</c> does: in the shard's turn, appends the marker (a
    /// COMMIT or ABORT control batch of <paramref name="producerId"/>), waits until it is durable,
    /// then applies it through <see cref="ICoordinatorShard.ReplayEndTransaction"/>, the code that
    /// applies it at load. Completes with None, or with the error Kafka's runtime gives: NOT_COORDINATOR
    /// for a partition this runtime does not have (or whose log is not there, or failed to write),
    /// COORDINATOR_LOAD_IN_PROGRESS before the load, the refusal's error when the log refuses the
    /// marker. Nothing is applied unless the marker is durable.
    /// </summary>
    public Task<ErrorCode> CompleteTransactionAsync(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit)
    {
        if ((uint)partition >= (uint)_shards.Length)
        {
            return Task.FromResult(ErrorCode.NotCoordinator);
        }

        if (!_loaded)
        {
            return Task.FromResult(ErrorCode.CoordinatorLoadInProgress);
        }

        var done = new TaskCompletionSource<ErrorCode>(TaskCreationOptions.RunContinuationsAsynchronously);
        var shard = _shards[partition];
        shard.Enqueue(() => shard.RunCompleteTransactionAsync(producerId, producerEpoch, coordinatorEpoch, commit, done));
        return done.Task;
    }

    /// <summary>Runs a read operation in shard <paramref name="partition"/>'s turn (after every write queued before it is applied).</summary>
    public Task<T> ReadAsync<T>(int partition, Func<TShard, T> operation)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var shard = _shards[partition];
        shard.Enqueue(() =>
        {
            try
            {
                done.TrySetResult(operation(shard.State));
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }

            return ValueTask.CompletedTask;
        });
        return done.Task;
    }

    /// <summary>Stops every shard's timer and waits for the operations in flight.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var s in _shards)
        {
            s.Timer.Dispose();
        }

        foreach (var s in _shards)
        {
            await s.IdleAsync().ConfigureAwait(false);
        }
    }

    /// <summary>Completes when shard <paramref name="partition"/> has run everything queued so far (tests).</summary>
    internal Task IdleAsync(int partition) => _shards[partition].IdleAsync();

    private sealed class Shard
    {
        private readonly CoordinatorRuntime<TShard> _runtime;
        private readonly int _partition;
        private readonly Lock _queueLock = new();
        private readonly Queue<Func<ValueTask>> _queue = new();
        private bool _running;

        public Shard(CoordinatorRuntime<TShard> runtime, int partition, TimeProvider time, Func<CoordinatorShardContext<TShard>, TShard> create)
        {
            _runtime = runtime;
            _partition = partition;
            Timer = new CoordinatorTimer<TShard>(time, op => _ = runtime.WriteAsync(partition, op).ContinueWith(
                t => runtime._log.LogError("{Topic}-{Partition} timer operation failed: {Error}", runtime._topic, partition, t.Exception?.GetBaseException().Message),
                CancellationToken.None,
                TaskContinuationOptions.OnlyOnFaulted,
                TaskScheduler.Default));
            State = create(new CoordinatorShardContext<TShard>(partition, time, Timer));
        }

        public TShard State { get; }

        public CoordinatorTimer<TShard> Timer { get; }

        /// <summary>
        /// Queues one unit of work. The shard's turn is a loop over its queue, started by whoever
        /// finds it idle and run inline until some work awaits (a durability wait); the loop then
        /// goes on from that continuation. The lock guards the queue only, never the work.
        /// </summary>
        public void Enqueue(Func<ValueTask> work)
        {
            lock (_queueLock)
            {
                _queue.Enqueue(work);
                if (_running)
                {
                    return;
                }

                _running = true;
            }

            _ = DrainAsync();
        }

        public Task IdleAsync()
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Enqueue(() =>
            {
                done.TrySetResult();
                return ValueTask.CompletedTask;
            });
            return done.Task;
        }

        private async Task DrainAsync()
        {
            while (true)
            {
                Func<ValueTask>? work;
                lock (_queueLock)
                {
                    if (!_queue.TryDequeue(out work))
                    {
                        _running = false;
                        return;
                    }
                }

                try
                {
                    await work().ConfigureAwait(false);
                }
                catch (Exception e)
                {
                    _runtime._log.LogError("{Topic}-{Partition} operation failed: {Error}", _runtime._topic, _partition, e.Message);
                }
            }
        }

        public async ValueTask RunWriteAsync<T>(Func<TShard, CoordinatorResult<T>> operation, TaskCompletionSource<T> done)
        {
            CoordinatorResult<T> result;
            try
            {
                result = operation(State);
            }
            catch (Exception e)
            {
                done.TrySetException(e);
                return;
            }

            if (result.Records.Count == 0)
            {
                result.Committed?.Invoke();
                done.TrySetResult(result.Response);
                return;
            }

            var batch = result.IsTransactional
                ? RecordBatchBuilder.Build(result.Records, producerId: result.ProducerId, producerEpoch: result.ProducerEpoch, attributes: TransactionalAttributes)
                : RecordBatchBuilder.Build(result.Records);
            var (error, end) = await AppendAsync(batch, result.Records.Count, waitDurable: !result.AppliedOnAppend).ConfigureAwait(false);
            if (error != ErrorCode.None)
            {
                done.TrySetResult(result.Failed is { } failed ? failed(error) : result.Response);
                return;
            }

            try
            {
                var offset = end - result.Records.Count;
                foreach (var r in result.Records)
                {
                    // A null value is a tombstone: it must reach the replay as null, not as empty bytes.
                    var origin = new CoordinatorRecordOrigin(offset++, result.ProducerId, result.ProducerEpoch, result.IsTransactional);
                    State.Replay(in origin, r.Key, r.Value is { } value ? new ReadOnlyMemory<byte>(value) : (ReadOnlyMemory<byte>?)null);
                }

                result.Committed?.Invoke();
                done.TrySetResult(result.Response);
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }

        public async ValueTask RunCompleteTransactionAsync(long producerId, short producerEpoch, int coordinatorEpoch, bool commit, TaskCompletionSource<ErrorCode> done)
        {
            var marker = ControlRecordBatch.Build(producerId, producerEpoch, coordinatorEpoch, commit ? ControlRecordType.Commit : ControlRecordType.Abort, _runtime._time.GetUtcNow().ToUnixTimeMilliseconds());
            var (error, _) = await AppendAsync(marker, 1).ConfigureAwait(false);
            if (error != ErrorCode.None)
            {
                // The transaction coordinator retries a marker: a partition it cannot reach here is NOT_COORDINATOR.
                done.TrySetResult(error == ErrorCode.CoordinatorNotAvailable ? ErrorCode.NotCoordinator : error);
                return;
            }

            try
            {
                State.ReplayEndTransaction(producerId, producerEpoch, commit);
                done.TrySetResult(ErrorCode.None);
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }

        /// <summary>Appends <paramref name="batch"/> and waits for durability (unless not <paramref name="waitDurable"/>); the error to answer with (or None) and the offset after the batch.</summary>
        private async ValueTask<(ErrorCode Error, long End)> AppendAsync(byte[] batch, int count, bool waitDurable = true)
        {
            ICoordinatorLog? log;
            try
            {
                log = _runtime._logs(_partition);
            }
            catch (IOException e)
            {
                _runtime._log.LogError("{Topic}-{Partition} is not available: {Error}", _runtime._topic, _partition, e.Message);
                return (ErrorCode.CoordinatorNotAvailable, -1);
            }

            if (log is null)
            {
                return (ErrorCode.CoordinatorNotAvailable, -1);
            }

            try
            {
                if (!waitDurable)
                {
                    return (ErrorCode.None, log.Append(batch, durabilityWanted: false));
                }

                var end = log.Append(batch);
                await log.WaitDurableAsync(end).ConfigureAwait(false);
                return (ErrorCode.None, end);
            }
            catch (CoordinatorWriteRefusedException e)
            {
                _runtime._log.LogWarning("{Topic}-{Partition}: {Count} records refused: {Error}", _runtime._topic, _partition, count, e.Message);
                return (e.Error, -1);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // Kafka answers a storage error on the coordinator's partition with NOT_COORDINATOR.
                _runtime._log.LogError("{Topic}-{Partition}: could not write {Count} records: {Error}", _runtime._topic, _partition, count, e.Message);
                return (ErrorCode.NotCoordinator, -1);
            }
        }
    }
}
