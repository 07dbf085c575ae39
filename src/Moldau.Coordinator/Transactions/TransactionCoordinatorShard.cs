using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Transactions;

/// <summary>What every shard of the transaction coordinator shares.</summary>
internal sealed class TransactionShardServices(
    TransactionCoordinatorOptions options,
    ITransactionMarkerWriter markers,
    Func<long> generateProducerId,
    Func<int, int> coordinatorEpoch,
    ILogger log)
{
    public TransactionCoordinatorOptions Options { get; } = options;

    public ITransactionMarkerWriter Markers { get; } = markers;

    public Func<long> GenerateProducerId { get; } = generateProducerId;

    public Func<int, int> CoordinatorEpoch { get; } = coordinatorEpoch;

    public ILogger Log { get; } = log;

    /// <summary>Every transactional id's published state, for the produce path's check (KIP-890 part 1).</summary>
    public ConcurrentDictionary<string, TransactionView> Views { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// The transactional ids whose end (markers, then the Complete record) is under way here: each
    /// completes once its id leaves PrepareCommit / PrepareAbort. AddPartitionsToTxn for the next
    /// transaction waits on it instead of answering CONCURRENT_TRANSACTIONS at once (see
    /// <see cref="TransactionCoordinator.AddPartitionsAsync"/>).
    /// </summary>
    public ConcurrentDictionary<string, TaskCompletionSource> Ending { get; } = new(StringComparer.Ordinal);

    /// <summary>Signals the waiters of <paramref name="id"/>'s end, if any.</summary>
    public void Ended(string id)
    {
        if (Ending.TryRemove(id, out var ending))
        {
            ending.TrySetResult();
        }
    }

    /// <summary>Cancelled when the coordinator stops: marker writes in flight give up (the next start completes them).</summary>
    public CancellationTokenSource Stopping { get; } = new();
}

/// <summary>
/// The transactional ids of one <c>__transaction_state</c> partition and Kafka's transaction state
/// machine over them (<c>TransactionCoordinator</c>, <c>TransactionMetadata</c>). It runs on the
/// <see cref="CoordinatorRuntime{TShard}"/>, one operation at a time, so it takes no locks, and
/// because an operation's records are durable and applied before the next one starts, Kafka's
/// in-memory "pending state" is never needed: a second request simply sees the first one's result.
/// </summary>
/// <remarks>
/// Ending a transaction is two writes with the markers between them: PrepareCommit / PrepareAbort
/// (EndTxn is answered once it is durable), then the markers into every partition of the
/// transaction (outside the shard's turn, retried until each is durable or its partition is gone),
/// then CompleteCommit / CompleteAbort. A load that finds a transaction prepared writes its markers
/// again and completes it, so a crash at any point of an end is finished by the next start.
/// </remarks>
internal sealed class TransactionCoordinatorShard : ICoordinatorShard
{
    private const string AbortTimer = "abort-timed-out";
    private const string ExpireTimer = "expire-ids";

    private readonly CoordinatorShardContext<TransactionCoordinatorShard> _context;
    private readonly TransactionShardServices _services;
    private readonly Dictionary<string, TransactionMetadata> _txns = new(StringComparer.Ordinal);

    public TransactionCoordinatorShard(CoordinatorShardContext<TransactionCoordinatorShard> context, TransactionShardServices services)
    {
        _context = context;
        _services = services;
    }

    private long Now => _context.Time.GetUtcNow().ToUnixTimeMilliseconds();

    private TransactionCoordinatorOptions Options => _services.Options;

    private ILogger Log => _services.Log;

    /// <summary>How many transactional ids the shard holds.</summary>
    public int Count => _txns.Count;

    // ------------------------------------------------------------------ replay

    /// <inheritdoc/>
    public void Replay(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        if (TransactionLog.Decode(key, value) is not var (id, record))
        {
            return;
        }

        if (record is null)
        {
            _txns.Remove(id);
            _services.Views.TryRemove(id, out _);
            _services.Ended(id);
            return;
        }

        if (!_txns.TryGetValue(id, out var t))
        {
            _txns[id] = t = new TransactionMetadata(id);
        }
        else if (record.State == TransactionState.Empty)
        {
            // InitProducerId: the id held before is the previous one (Kafka's prevProducerId).
            t.PreviousProducerId = t.ProducerId;
        }

        t.ProducerId = record.ProducerId;
        t.ProducerEpoch = record.ProducerEpoch;
        t.TimeoutMs = record.TimeoutMs;
        t.State = record.State;
        t.StartTimestamp = record.StartTimestamp;
        t.LastUpdateTimestamp = record.LastUpdateTimestamp;
        t.Partitions.Clear();
        if (record.State is TransactionState.Ongoing or TransactionState.PrepareCommit or TransactionState.PrepareAbort)
        {
            t.Partitions.UnionWith(record.Partitions);
        }

        Publish(t);
        if (!t.State.IsPreparing())
        {
            _services.Ended(id);
        }
    }

    private void Publish(TransactionMetadata t) =>
        _services.Views[t.TransactionalId] = new TransactionView(t.ProducerId, t.ProducerEpoch, t.State, t.Partitions.Count == 0 ? EmptySet : t.Partitions.ToHashSet());

    private static readonly IReadOnlySet<(string, int)> EmptySet = new HashSet<(string, int)>();

    /// <inheritdoc/>
    public void OnLoaded()
    {
        // Transactions found prepared ended before the stop without their markers all written (or
        // without the Complete record): finish them now.
        foreach (var t in _txns.Values.Where(t => t.State.IsPreparing()).ToList())
        {
            Log.LogInformation("transactional id {Id}: {State} found at load; writing its markers to {Count} partitions again", t.TransactionalId, t.State.Name(), t.Partitions.Count);
            StartMarkers(t);
        }

        if (Options.AbortTimedOutTransactionsIntervalMs > 0)
        {
            _context.Timer.Schedule(AbortTimer, TimeSpan.FromMilliseconds(Options.AbortTimedOutTransactionsIntervalMs), static s => s.AbortTimedOut());
        }

        if (Options.RemoveExpiredTransactionalIdsIntervalMs > 0)
        {
            _context.Timer.Schedule(ExpireTimer, TimeSpan.FromMilliseconds(Options.RemoveExpiredTransactionalIdsIntervalMs), static s => s.ExpireIds());
        }
    }

    private List<RecordToWrite> One(string id, TransactionRecord r) => [new RecordToWrite(TransactionLog.Key(id), TransactionLog.Value(r), Now)];

    // ------------------------------------------------------------------ InitProducerId

    /// <summary>
    /// InitProducerId with a transactional id: a new producer id at epoch 0, or the epoch bumped
    /// (fencing the previous producer); a producer id and epoch given are checked (KIP-360); an
    /// open transaction is aborted first (epoch bumped) and answered CONCURRENT_TRANSACTIONS, so the
    /// client retries once the abort is complete, as Kafka does.
    /// </summary>
    public CoordinatorResult<InitProducerIdResult> InitProducerId(string id, int timeoutMs, long expectedProducerId, short expectedEpoch)
    {
        var expected = expectedProducerId >= 0 ? (Id: expectedProducerId, Epoch: expectedEpoch) : ((long Id, short Epoch)?)null;
        if (!_txns.TryGetValue(id, out var t))
        {
            long producerId;
            try
            {
                producerId = _services.GenerateProducerId();
            }
            catch (Exception e)
            {
                Log.LogError("no producer id for transactional id {Id}: {Error}", id, e.Message);
                return CoordinatorResult<InitProducerIdResult>.Of(InitProducerIdResult.Of(ErrorCode.CoordinatorLoadInProgress));
            }

            // A new id starts at epoch 0 whether or not the producer named an id of its own: that
            // is a producer recovering after its id expired (KIP-360), and a new one is safe.
            var created = new TransactionRecord(producerId, 0, timeoutMs, TransactionState.Empty, [], -1, Now);
            return Init(id, created, lastEpoch: -1);
        }

        if (t.State.IsPreparing())
        {
            return CoordinatorResult<InitProducerIdResult>.Of(InitProducerIdResult.Of(ErrorCode.ConcurrentTransactions));
        }

        if (expected is { } e1 && !(t.ProducerEpoch < 0 || e1.Id == t.ProducerId || (e1.Id == t.PreviousProducerId && e1.Epoch >= short.MaxValue - 1)))
        {
            return CoordinatorResult<InitProducerIdResult>.Of(InitProducerIdResult.Of(ErrorCode.ProducerFenced));
        }

        switch (t.State)
        {
            case TransactionState.Ongoing:
                // Abort the open transaction at a bumped epoch (fencing its producer); that epoch
                // is never handed out: the retry bumps it again (or rotates the id if it ran out).
                return Fence(t, CoordinatorResult<InitProducerIdResult>.Of, InitProducerIdResult.Of(ErrorCode.ConcurrentTransactions), InitProducerIdResult.Of);

            case TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort:
                if (t.IsProducerEpochExhausted && (expected is null || expected.Value.Epoch == t.ProducerEpoch))
                {
                    long producerId;
                    try
                    {
                        producerId = _services.GenerateProducerId();
                    }
                    catch (Exception e)
                    {
                        Log.LogError("no producer id for transactional id {Id}: {Error}", id, e.Message);
                        return CoordinatorResult<InitProducerIdResult>.Of(InitProducerIdResult.Of(ErrorCode.CoordinatorLoadInProgress));
                    }

                    return Init(id, new TransactionRecord(producerId, 0, timeoutMs, TransactionState.Empty, [], -1, Now), expected is null ? (short)-1 : t.ProducerEpoch);
                }

                short epoch, last;
                if (expected is not { } e2)
                {
                    (epoch, last) = ((short)(t.ProducerEpoch + 1), -1);
                }
                else if (t.ProducerEpoch < 0 || e2.Epoch == t.ProducerEpoch)
                {
                    (epoch, last) = ((short)(t.ProducerEpoch + 1), t.ProducerEpoch);
                }
                else if (e2.Epoch == t.LastProducerEpoch)
                {
                    // A retry of an InitProducerId that succeeded: the same epoch again.
                    (epoch, last) = (t.ProducerEpoch, t.LastProducerEpoch);
                }
                else
                {
                    Log.LogInformation("transactional id {Id}: epoch {Expected} is neither the current {Current} nor the previous {Last}: fenced", id, e2.Epoch, t.ProducerEpoch, t.LastProducerEpoch);
                    return CoordinatorResult<InitProducerIdResult>.Of(InitProducerIdResult.Of(ErrorCode.ProducerFenced));
                }

                return Init(id, new TransactionRecord(t.ProducerId, epoch, timeoutMs, TransactionState.Empty, [], -1, Now), last);

            default:
                throw new InvalidOperationException($"transactional id {id} is in state {t.State}, which is never kept");
        }
    }

    private CoordinatorResult<InitProducerIdResult> Init(string id, TransactionRecord record, short lastEpoch) =>
        CoordinatorResult<InitProducerIdResult>.Of(
            One(id, record),
            new InitProducerIdResult(ErrorCode.None, record.ProducerId, record.ProducerEpoch),
            InitProducerIdResult.Of,
            () =>
            {
                _txns[id].LastProducerEpoch = lastEpoch;
                Log.LogInformation("transactional id {Id} initialized: producer id {ProducerId}, epoch {Epoch}", id, record.ProducerId, record.ProducerEpoch);
            });

    /// <summary>Aborts <paramref name="t"/>'s open transaction at a bumped epoch: PrepareAbort, then its markers.</summary>
    private CoordinatorResult<T> Fence<T>(TransactionMetadata t, Func<T, CoordinatorResult<T>> none, T response, Func<ErrorCode, T> failed)
    {
        if (t.ProducerEpoch == short.MaxValue)
        {
            return none(failed(ErrorCode.UnknownServerError));
        }

        var record = t.ToRecord(Now) with { ProducerEpoch = (short)(t.ProducerEpoch + 1), State = TransactionState.PrepareAbort };
        return CoordinatorResult<T>.Of(One(t.TransactionalId, record), response, failed, () =>
        {
            t.LastProducerEpoch = -1;
            StartMarkers(t);
        });
    }

    // ------------------------------------------------------------------ AddPartitionsToTxn

    /// <summary>AddPartitionsToTxn (and AddOffsetsToTxn): the partitions join the transaction, which starts if none was open.</summary>
    public CoordinatorResult<ErrorCode> AddPartitions(string id, long producerId, short producerEpoch, IReadOnlyCollection<(string Topic, int Partition)> partitions)
    {
        if (!_txns.TryGetValue(id, out var t) || t.ProducerId != producerId)
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.InvalidProducerIdMapping);
        }

        if (t.ProducerEpoch != producerEpoch)
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.ProducerFenced);
        }

        if (t.State.IsPreparing())
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.ConcurrentTransactions);
        }

        if (t.State == TransactionState.Ongoing && partitions.All(t.Partitions.Contains))
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.None);
        }

        var now = Now;
        var start = t.State is TransactionState.Empty or TransactionState.CompleteCommit or TransactionState.CompleteAbort ? now : t.StartTimestamp;
        var record = new TransactionRecord(t.ProducerId, t.ProducerEpoch, t.TimeoutMs, TransactionState.Ongoing, [.. t.Partitions.Union(partitions)], start, now);
        return CoordinatorResult<ErrorCode>.Of(One(id, record), ErrorCode.None, error => error);
    }

    // ------------------------------------------------------------------ EndTxn

    /// <summary>
    /// EndTxn: PrepareCommit or PrepareAbort, answered once durable; the markers and the Complete
    /// record follow. A retry finds the transaction preparing (CONCURRENT_TRANSACTIONS) or complete
    /// (None), as Kafka answers.
    /// </summary>
    public CoordinatorResult<ErrorCode> EndTransaction(string id, long producerId, short producerEpoch, bool commit)
    {
        if (!_txns.TryGetValue(id, out var t) || t.ProducerId != producerId)
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.InvalidProducerIdMapping);
        }

        if (producerEpoch != t.ProducerEpoch)
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.ProducerFenced);
        }

        var error = t.State switch
        {
            TransactionState.Ongoing => (ErrorCode?)null,
            TransactionState.CompleteCommit => commit ? ErrorCode.None : ErrorCode.InvalidTxnState,
            TransactionState.CompleteAbort => commit ? ErrorCode.InvalidTxnState : ErrorCode.None,
            TransactionState.PrepareCommit => commit ? ErrorCode.ConcurrentTransactions : ErrorCode.InvalidTxnState,
            TransactionState.PrepareAbort => commit ? ErrorCode.InvalidTxnState : ErrorCode.ConcurrentTransactions,
            _ => ErrorCode.InvalidTxnState,
        };
        if (error is { } answered)
        {
            if (answered == ErrorCode.InvalidTxnState)
            {
                Log.LogInformation("transactional id {Id} is {State}: EndTxn({Result}) is not a valid transition", id, t.State.Name(), commit ? "commit" : "abort");
            }

            return CoordinatorResult<ErrorCode>.Of(answered);
        }

        var record = t.ToRecord(Now) with { State = commit ? TransactionState.PrepareCommit : TransactionState.PrepareAbort };
        return CoordinatorResult<ErrorCode>.Of(One(id, record), ErrorCode.None, e => e, () => StartMarkers(t));
    }

    // ------------------------------------------------------------------ markers

    /// <summary>
    /// Writes <paramref name="t"/>'s markers, then submits its Complete record. The markers are
    /// appended here, in the shard's turn (an append is a write into the page cache, no fsync), all
    /// of them before the first durability wait, so one fsync per partition serves them and no
    /// thread is woken to start them; the wait for their fsyncs and any retry run outside the turn.
    /// </summary>
    private void StartMarkers(TransactionMetadata t)
    {
        var id = t.TransactionalId;
        var (producerId, epoch, state) = (t.ProducerId, t.ProducerEpoch, t.State);
        var partitions = t.Partitions.ToList();
        var result = state == TransactionState.PrepareCommit ? ControlRecordType.Commit : ControlRecordType.Abort;
        var coordinatorEpoch = _services.CoordinatorEpoch(_context.Partition);
        _services.Ending.GetOrAdd(id, static _ => new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _ = WriteMarkersThenCompleteAsync(id, producerId, epoch, coordinatorEpoch, result, partitions, state);
    }

    private async Task WriteMarkersThenCompleteAsync(string id, long producerId, short epoch, int coordinatorEpoch, ControlRecordType result, List<(string Topic, int Partition)> partitions, TransactionState state)
    {
        try
        {
            if (await WriteMarkersAsync(id, producerId, epoch, coordinatorEpoch, result, partitions).ConfigureAwait(false))
            {
                _context.Timer.Schedule(CompleteKey(id), TimeSpan.Zero, s => s.Complete(id, producerId, epoch, state));
            }
        }
        catch (Exception e)
        {
            // WriteMarkersAsync handles the writer's failures itself; this is a bug, not an I/O error.
            Log.LogError("transactional id {Id}: writing {Result} markers failed: {Error}", id, result, e);
        }
    }

    private static string CompleteKey(string id) => "complete:" + id;

    /// <summary>Writes the markers until every partition has one (or is gone); false when the coordinator stopped first.</summary>
    private async Task<bool> WriteMarkersAsync(string id, long producerId, short epoch, int coordinatorEpoch, ControlRecordType result, List<(string Topic, int Partition)> partitions)
    {
        var stopping = _services.Stopping.Token;
        var backoff = Options.MarkerRetryBackoffMs;
        while (partitions.Count > 0)
        {
            if (stopping.IsCancellationRequested)
            {
                return false;
            }

            IReadOnlyList<(string Topic, int Partition, ErrorCode Error)> errors;
            try
            {
                errors = await _services.Markers.WriteMarkersAsync(producerId, epoch, coordinatorEpoch, result, partitions).ConfigureAwait(false);
            }
            catch (Exception e)
            {
                Log.LogWarning("transactional id {Id}: writing {Result} markers failed, retrying: {Error}", id, result, e.Message);
                errors = [.. partitions.Select(p => (p.Topic, p.Partition, ErrorCode.KafkaStorageError))];
            }

            var retry = new List<(string Topic, int Partition)>();
            foreach (var (topic, partition, error) in errors)
            {
                switch (error)
                {
                    case ErrorCode.None:
                        break;
                    case ErrorCode.UnknownTopicOrPartition:
                        Log.LogInformation("transactional id {Id}: {Topic}-{Partition} no longer exists; its {Result} marker is skipped", id, topic, partition, result);
                        break;
                    case ErrorCode.InvalidProducerEpoch or ErrorCode.ProducerFenced or ErrorCode.TransactionCoordinatorFenced or ErrorCode.UnsupportedForMessageFormat:
                        Log.LogWarning("transactional id {Id}: the {Result} marker for {Topic}-{Partition} was refused ({Error}); the partition has moved past this transaction", id, result, topic, partition, error);
                        break;
                    default:
                        retry.Add((topic, partition));
                        break;
                }
            }

            // A partition the writer did not answer for is tried again.
            foreach (var p in partitions)
            {
                if (!errors.Any(e => e.Topic == p.Topic && e.Partition == p.Partition) && !retry.Contains(p))
                {
                    retry.Add(p);
                }
            }

            partitions = retry;
            if (partitions.Count > 0)
            {
                Log.LogInformation("transactional id {Id}: retrying {Result} markers for {Count} partitions in {Backoff} ms", id, result, partitions.Count, backoff);
                try
                {
                    await Task.Delay(TimeSpan.FromMilliseconds(backoff), _context.Time, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return false;
                }

                backoff = Math.Min(backoff * 2, 5_000);
            }
        }

        return true;
    }

    /// <summary>
    /// The markers are durable: CompleteCommit or CompleteAbort (tried again later if it cannot be
    /// written now). Applied once appended, without waiting for its fsync, as Kafka writes it
    /// without anyone waiting: lost in a crash, it leaves the transaction prepared, and the load
    /// writes the markers again (a marker of an ended transaction changes nothing) and completes it.
    /// Every later record of this shard that is waited for (the id's next AddPartitionsToTxn) is
    /// fsynced after it in the same log, so nothing is ever decided on it that outlives it.
    /// </summary>
    internal CoordinatorResult<bool> Complete(string id, long producerId, short epoch, TransactionState prepared)
    {
        if (!_txns.TryGetValue(id, out var t) || t.ProducerId != producerId || t.ProducerEpoch != epoch || t.State != prepared)
        {
            Log.LogWarning("transactional id {Id} changed while its markers were written; not completing {State}", id, prepared.Name());
            return CoordinatorResult<bool>.Of(false);
        }

        var complete = prepared == TransactionState.PrepareCommit ? TransactionState.CompleteCommit : TransactionState.CompleteAbort;
        var record = new TransactionRecord(t.ProducerId, t.ProducerEpoch, t.TimeoutMs, complete, [], t.StartTimestamp, Now);
        return CoordinatorResult<bool>.OnAppend(
            One(id, record),
            true,
            error =>
            {
                Log.LogWarning("transactional id {Id}: {State} could not be written ({Error}); retrying", id, complete.Name(), error);
                _context.Timer.Schedule(CompleteKey(id), TimeSpan.FromMilliseconds(Math.Max(Options.MarkerRetryBackoffMs, 1)), s => s.Complete(id, producerId, epoch, prepared));
                return false;
            },
            () => Log.LogDebug("transactional id {Id}: {State}", id, complete.Name()));
    }

    // ------------------------------------------------------------------ timers

    /// <summary>transaction.timeout.ms: every open transaction past its timeout is aborted at a bumped epoch (its producer is fenced).</summary>
    internal CoordinatorResult<bool> AbortTimedOut()
    {
        var now = Now;
        var records = new List<RecordToWrite>();
        var fenced = new List<TransactionMetadata>();
        foreach (var t in _txns.Values)
        {
            if (t.State == TransactionState.Ongoing && t.StartTimestamp + t.TimeoutMs < now && t.ProducerEpoch < short.MaxValue)
            {
                Log.LogInformation("transactional id {Id}: transaction open since {Start} exceeded transaction.timeout.ms={Timeout}; aborting it", t.TransactionalId, t.StartTimestamp, t.TimeoutMs);
                var record = t.ToRecord(now) with { ProducerEpoch = (short)(t.ProducerEpoch + 1), State = TransactionState.PrepareAbort };
                records.Add(new RecordToWrite(TransactionLog.Key(t.TransactionalId), TransactionLog.Value(record), now));
                fenced.Add(t);
            }
        }

        _context.Timer.Schedule(AbortTimer, TimeSpan.FromMilliseconds(Options.AbortTimedOutTransactionsIntervalMs), static s => s.AbortTimedOut());
        if (records.Count == 0)
        {
            return CoordinatorResult<bool>.Of(true);
        }

        return CoordinatorResult<bool>.Of(
            records,
            true,
            error =>
            {
                Log.LogWarning("timed-out transactions could not be aborted ({Error}); the next check tries again", error);
                return false;
            },
            () =>
            {
                foreach (var t in fenced)
                {
                    t.LastProducerEpoch = -1;
                    StartMarkers(t);
                }
            });
    }

    /// <summary>transactional.id.expiration.ms: ids idle that long with no transaction open get a tombstone.</summary>
    internal CoordinatorResult<bool> ExpireIds()
    {
        var now = Now;
        var records = new List<RecordToWrite>();
        foreach (var t in _txns.Values)
        {
            if (t.State.IsExpirationAllowed() && t.LastUpdateTimestamp <= now - Options.TransactionalIdExpirationMs)
            {
                Log.LogInformation("transactional id {Id} expired: idle since {LastUpdate} (transactional.id.expiration.ms)", t.TransactionalId, t.LastUpdateTimestamp);
                records.Add(new RecordToWrite(TransactionLog.Key(t.TransactionalId), null, now));
            }
        }

        _context.Timer.Schedule(ExpireTimer, TimeSpan.FromMilliseconds(Options.RemoveExpiredTransactionalIdsIntervalMs), static s => s.ExpireIds());
        return records.Count == 0
            ? CoordinatorResult<bool>.Of(true)
            : CoordinatorResult<bool>.Of(records, true, error =>
            {
                Log.LogWarning("expired transactional ids could not be removed ({Error})", error);
                return false;
            });
    }

    // ------------------------------------------------------------------ reads

    /// <summary>DescribeTransactions for one id.</summary>
    public TransactionDescription Describe(string id)
    {
        if (!_txns.TryGetValue(id, out var t) || t.State == TransactionState.Dead)
        {
            return new TransactionDescription(id, ErrorCode.TransactionalIdNotFound, -1, -1, string.Empty, 0, -1, []);
        }

        var topics = t.Partitions.GroupBy(p => p.Topic, StringComparer.Ordinal)
            .Select(g => (g.Key, (IReadOnlyList<int>)[.. g.Select(p => p.Partition).Order()]))
            .ToList();
        return new TransactionDescription(id, ErrorCode.None, t.ProducerId, t.ProducerEpoch, t.State.Name(), t.TimeoutMs, t.StartTimestamp, topics);
    }

    /// <summary>ListTransactions over this shard: the filters are anded, an empty one matches all; a duration keeps transactions running longer than it.</summary>
    public List<TransactionListing> List(IReadOnlySet<long> producerIds, IReadOnlySet<TransactionState>? states, long durationMs)
    {
        var now = Now;
        var list = new List<TransactionListing>();
        foreach (var t in _txns.Values)
        {
            if (t.State == TransactionState.Dead
                || (producerIds.Count > 0 && !producerIds.Contains(t.ProducerId))
                || (states is not null && !states.Contains(t.State))
                || (durationMs >= 0 && now - t.StartTimestamp <= durationMs))
            {
                continue;
            }

            list.Add(new TransactionListing(t.TransactionalId, t.ProducerId, t.State.Name()));
        }

        return list;
    }
}
