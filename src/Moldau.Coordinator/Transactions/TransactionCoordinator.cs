using Microsoft.Extensions.Logging;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Coordinator.Transactions;

/// <summary>
/// Kafka's transaction coordinator on the <see cref="CoordinatorRuntime{TShard}"/>: each
/// transactional id belongs to the shard of its <c>__transaction_state</c> partition
/// (<see cref="TransactionLog.PartitionFor"/>), where its operations run one at a time; a change
/// is answered once its record is durable and applied. Ended transactions get their markers
/// through an <see cref="ITransactionMarkerWriter"/>.
/// </summary>
public sealed class TransactionCoordinator : IAsyncDisposable
{
    private readonly CoordinatorRuntime<TransactionCoordinatorShard> _runtime;
    private readonly TransactionShardServices _services;
    private readonly TransactionCoordinatorOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly int _partitions;

    /// <summary>Creates the coordinator.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="statePartition">The log of a partition of __transaction_state (the caller creates the topic if needed); null or <see cref="IOException"/> when it is not available.</param>
    /// <param name="markers">Writes the markers of ended transactions.</param>
    /// <param name="generateProducerId">A new producer id (the broker's <see cref="ProducerIdManager"/>); throws when none can be had.</param>
    /// <param name="time">The clock (timeouts, expiry, timestamps).</param>
    /// <param name="log">Where to log.</param>
    /// <param name="coordinatorEpoch">The coordinator epoch of a partition (its leader epoch), written into markers; 0 when not given.</param>
    public TransactionCoordinator(TransactionCoordinatorOptions options, Func<int, ICoordinatorLog?> statePartition, ITransactionMarkerWriter markers, Func<long> generateProducerId, TimeProvider time, ILogger log, Func<int, int>? coordinatorEpoch = null)
    {
        _options = options;
        _log = log;
        _time = time;
        _partitions = Math.Max(1, options.StateTopicPartitions);
        _services = new TransactionShardServices(options, markers, generateProducerId, coordinatorEpoch ?? (_ => 0), log);
        _runtime = new CoordinatorRuntime<TransactionCoordinatorShard>(
            TransactionLog.Name,
            _partitions,
            statePartition,
            context => new TransactionCoordinatorShard(context, _services),
            time,
            log);
    }

    /// <summary>Creates the coordinator over local partition logs.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="statePartition">Opens (creating the topic if needed) a partition of __transaction_state; <see cref="IOException"/> when it is not available.</param>
    /// <param name="markers">Writes the markers of ended transactions.</param>
    /// <param name="generateProducerId">A new producer id.</param>
    /// <param name="time">The clock.</param>
    /// <param name="log">Where to log.</param>
    /// <param name="coordinatorEpoch">The coordinator epoch of a partition.</param>
    public TransactionCoordinator(TransactionCoordinatorOptions options, Func<int, IPartitionLog> statePartition, ITransactionMarkerWriter markers, Func<long> generateProducerId, TimeProvider time, ILogger log, Func<int, int>? coordinatorEpoch = null)
        : this(options, p => new PartitionCoordinatorLog(statePartition(p)), markers, generateProducerId, time, log, coordinatorEpoch)
    {
    }

    /// <summary>The runtime the shards run on (tests).</summary>
    internal CoordinatorRuntime<TransactionCoordinatorShard> Runtime => _runtime;

    /// <summary>The settings.</summary>
    public TransactionCoordinatorOptions Options => _options;

    /// <summary>The __transaction_state partition of <paramref name="transactionalId"/>.</summary>
    public int PartitionFor(string transactionalId) => TransactionLog.PartitionFor(transactionalId, _partitions);

    /// <summary>Replays the partitions of __transaction_state that exist, completes the transactions found prepared, and starts the timers.</summary>
    public void Start(IEnumerable<int> existingPartitions)
    {
        _runtime.Load(existingPartitions);
        var count = Task.WhenAll(Enumerable.Range(0, _partitions).Select(p => _runtime.ReadAsync(p, s => s.Count))).GetAwaiter().GetResult().Sum();
        _log.LogInformation("transaction coordinator loaded {Count} transactional ids", count);
    }

    /// <summary>
    /// InitProducerId with a transactional id (Kafka's <c>handleInitProducerId</c>): an empty id is
    /// INVALID_REQUEST, a timeout above transaction.max.timeout.ms (or not positive)
    /// INVALID_TRANSACTION_TIMEOUT; <paramref name="expectedProducerId"/> / <paramref name="expectedEpoch"/>
    /// are -1 unless the producer names its current ones (v3+, KIP-360).
    /// </summary>
    public Task<InitProducerIdResult> InitProducerIdAsync(string transactionalId, int transactionTimeoutMs, long expectedProducerId = -1, short expectedEpoch = -1)
    {
        if (transactionalId.Length == 0)
        {
            return Task.FromResult(InitProducerIdResult.Of(ErrorCode.InvalidRequest));
        }

        if (transactionTimeoutMs <= 0 || transactionTimeoutMs > _options.MaxTimeoutMs)
        {
            return Task.FromResult(InitProducerIdResult.Of(ErrorCode.InvalidTransactionTimeout));
        }

        return _runtime.WriteAsync(PartitionFor(transactionalId), s => s.InitProducerId(transactionalId, transactionTimeoutMs, expectedProducerId, expectedEpoch));
    }

    /// <summary>
    /// AddPartitionsToTxn / AddOffsetsToTxn: adds <paramref name="partitions"/> to the producer's
    /// transaction. While the producer's previous transaction is still ending here (its markers
    /// being written), Kafka answers CONCURRENT_TRANSACTIONS and the client tries again after a
    /// backoff (librdkafka 20 ms, the Java client 20-100 ms), far longer than an end takes on one
    /// node; so the request waits for that end instead, up to
    /// <see cref="TransactionCoordinatorOptions.EndWaitMs"/>, and is then run again. The answer is
    /// the same one a retry would get, only sooner; CONCURRENT_TRANSACTIONS still comes when the end
    /// takes longer (a partition that cannot take its marker now).
    /// </summary>
    public async Task<ErrorCode> AddPartitionsAsync(string transactionalId, long producerId, short producerEpoch, IReadOnlyCollection<(string Topic, int Partition)> partitions)
    {
        if (transactionalId.Length == 0)
        {
            return ErrorCode.InvalidRequest;
        }

        var shard = PartitionFor(transactionalId);
        for (var attempt = 0; ; attempt++)
        {
            var error = await _runtime.WriteAsync(shard, s => s.AddPartitions(transactionalId, producerId, producerEpoch, partitions)).ConfigureAwait(false);
            if (error != ErrorCode.ConcurrentTransactions || attempt >= 2 || _options.EndWaitMs <= 0)
            {
                return error;
            }

            if (!_services.Ending.TryGetValue(transactionalId, out var ending))
            {
                // Ended between the answer and now: run it again; still preparing without an end
                // under way here (not expected): the answer stands.
                if (_services.Views.TryGetValue(transactionalId, out var view) && view.State.IsPreparing())
                {
                    return error;
                }

                continue;
            }

            try
            {
                await ending.Task.WaitAsync(TimeSpan.FromMilliseconds(_options.EndWaitMs), _time, _services.Stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException)
            {
                return error;
            }
        }
    }

    /// <summary>EndTxn: commits or aborts the producer's transaction; answered once PrepareCommit / PrepareAbort is durable.</summary>
    public Task<ErrorCode> EndTransactionAsync(string transactionalId, long producerId, short producerEpoch, bool commit) =>
        transactionalId.Length == 0
            ? Task.FromResult(ErrorCode.InvalidRequest)
            : _runtime.WriteAsync(PartitionFor(transactionalId), s => s.EndTransaction(transactionalId, producerId, producerEpoch, commit));

    /// <summary>
    /// Whether <paramref name="topic"/>-<paramref name="partition"/> is in the producer's open
    /// transaction (KIP-890 part 1, the check AddPartitionsToTxn v4 verify_only makes and the
    /// produce path makes before a transactional batch is appended). Reads the state last applied,
    /// without waiting for the shard's turn: an end of the transaction already durable is seen.
    /// INVALID_PRODUCER_ID_MAPPING (unknown id or producer id), PRODUCER_FENCED (other epoch),
    /// CONCURRENT_TRANSACTIONS (the transaction is ending), TRANSACTION_ABORTABLE (not added), or None.
    /// </summary>
    public ErrorCode VerifyPartition(string transactionalId, long producerId, short producerEpoch, string topic, int partition)
    {
        if (transactionalId.Length == 0)
        {
            return ErrorCode.InvalidRequest;
        }

        if (!_services.Views.TryGetValue(transactionalId, out var view) || view.ProducerId != producerId)
        {
            return ErrorCode.InvalidProducerIdMapping;
        }

        if (view.ProducerEpoch != producerEpoch)
        {
            return ErrorCode.ProducerFenced;
        }

        if (view.State.IsPreparing())
        {
            return ErrorCode.ConcurrentTransactions;
        }

        return view.State == TransactionState.Ongoing && view.Partitions.Contains((topic, partition)) ? ErrorCode.None : ErrorCode.TransactionAbortable;
    }

    /// <summary>DescribeTransactions for one id (TRANSACTIONAL_ID_NOT_FOUND when unknown; INVALID_REQUEST when empty).</summary>
    public Task<TransactionDescription> DescribeAsync(string transactionalId) =>
        transactionalId.Length == 0
            ? Task.FromResult(new TransactionDescription(transactionalId, ErrorCode.InvalidRequest, -1, -1, string.Empty, 0, -1, []))
            : _runtime.ReadAsync(PartitionFor(transactionalId), s => s.Describe(transactionalId));

    /// <summary>
    /// ListTransactions (KIP-664): every shard's ids, filtered by producer ids and state names
    /// (empty: all), and by <paramref name="durationMs"/> (-1: none; else only transactions running
    /// longer). State names Kafka does not know come back in <c>UnknownStates</c> and match nothing.
    /// </summary>
    public async Task<(List<TransactionListing> Transactions, List<string> UnknownStates)> ListAsync(IReadOnlyCollection<long> producerIds, IReadOnlyCollection<string> states, long durationMs = -1)
    {
        var unknown = new List<string>();
        HashSet<TransactionState>? stateFilter = null;
        if (states.Count > 0)
        {
            stateFilter = [];
            foreach (var name in states)
            {
                if (TransactionStates.FromName(name) is { } s)
                {
                    stateFilter.Add(s);
                }
                else
                {
                    unknown.Add(name);
                }
            }
        }

        var ids = producerIds.ToHashSet();
        var shards = await Task.WhenAll(Enumerable.Range(0, _partitions).Select(p => _runtime.ReadAsync(p, s => s.List(ids, stateFilter, durationMs)))).ConfigureAwait(false);
        return (shards.SelectMany(s => s).ToList(), unknown);
    }

    /// <summary>Stops the timers and marker writes in flight (the next start completes what they left) and waits for the operations under way.</summary>
    public async ValueTask DisposeAsync()
    {
        await _services.Stopping.CancelAsync().ConfigureAwait(false);
        await _runtime.DisposeAsync().ConfigureAwait(false);
    }
}
