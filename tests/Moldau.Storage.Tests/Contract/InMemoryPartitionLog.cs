using System.Buffers;
using Moldau.Protocol;
using Moldau.Protocol.Records;
using Moldau.Storage.Cleaning;

namespace Moldau.Storage.Tests.Contract;

/// <summary>
/// A second <see cref="IPartitionLog"/>, kept in memory and written from the interface's contract
/// alone (no code of the local log): it runs the same contract tests as <c>PartitionLog</c>, and
/// the broker's handlers run against it, which shows that another backend needs no handler
/// change. Durability is asynchronous, as a remote store's would be: an append becomes durable on
/// a thread-pool thread, at once when someone waits for it, else after <paramref name="linger"/>.
/// Test code: it copies each batch and takes a lock for every read.
/// </summary>
/// <param name="linger">How long an append nobody waits for stays above the high watermark.</param>
/// <param name="location">What <see cref="Directory"/> reports.</param>
internal sealed class InMemoryPartitionLog(TimeSpan linger, string location = "memory") : IPartitionLog
{
    private const int RememberedBatches = 5;
    private readonly Lock _lock = new();
    private readonly List<Stored> _batches = [];
    private readonly List<(int Epoch, long StartOffset)> _epochs = [];
    private readonly Dictionary<long, Producer> _producers = [];
    private readonly List<(long Offset, TaskCompletionSource Done)> _waiters = [];
    private long _logStart;
    private long _logEnd;
    private long _highWatermark;
    private bool _lingering;
    private bool _disposed;

    private sealed record Stored(long BaseOffset, long LastOffset, byte[] Bytes)
    {
        public RecordBatch View => new(Bytes);
    }

    // Transactions: the open ones (first offset, producer), those ended by a marker at or above the
    // high watermark (first offset, marker), and the aborted ones in marker order.
    private readonly List<(long First, long ProducerId)> _open = [];
    private readonly List<(long First, long Marker)> _undecided = [];
    private readonly List<(long ProducerId, long First, long Marker, long LastStable)> _aborted = [];

    private sealed class Producer(short epoch)
    {
        public short Epoch { get; set; } = epoch;

        public long LastTimestamp { get; set; } = -1;

        public int CoordinatorEpoch { get; set; } = -1;

        public long TxnFirstOffset { get; set; } = -1;

        public Queue<(int FirstSeq, int LastSeq, long BaseOffset, long LastOffset)> Batches { get; } = new();
    }

    public string Directory => location;

    public long LogStartOffset => Volatile.Read(ref _logStart);

    public long HighWatermark => Volatile.Read(ref _highWatermark);

    public long LastStableOffset
    {
        get
        {
            lock (_lock)
            {
                var unstable = _open.Select(t => t.First).Concat(_undecided.Select(t => t.First)).DefaultIfEmpty(long.MaxValue).Min();
                return unstable >= _highWatermark ? _highWatermark : Math.Min(Math.Max(unstable, _logStart), _highWatermark);
            }
        }
    }

    public long LogEndOffset => Volatile.Read(ref _logEnd);

    public long RecoveryPoint => HighWatermark;

    public Action? OnHighWatermarkAdvanced { get; set; }

    public long SizeInBytes
    {
        get
        {
            lock (_lock)
            {
                return _batches.Sum(b => (long)b.Bytes.Length);
            }
        }
    }

    public AppendResult Append(Span<byte> batch, int leaderEpoch, bool durabilityWanted = false)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var view = new RecordBatch(batch.ToArray());
            var idempotent = view.ProducerId >= 0 && !view.IsControl && view.BaseSequence >= 0;
            Producer? producer = null;
            var lastSeq = (int)(((long)view.BaseSequence + view.LastOffsetDelta) % ((long)int.MaxValue + 1));
            var marker = view.IsControl && view.ProducerId >= 0 ? Marker(view) : null;
            _producers.TryGetValue(view.ProducerId, out var known);
            if (marker is { } m && known is not null)
            {
                if (view.ProducerEpoch < known.Epoch)
                {
                    return new AppendResult(AppendStatus.InvalidProducerEpoch, -1);
                }

                if (m.CoordinatorEpoch < known.CoordinatorEpoch)
                {
                    return new AppendResult(AppendStatus.TransactionCoordinatorFenced, -1);
                }
            }

            if (idempotent)
            {
                producer = known;
                if (Check(producer, view.ProducerEpoch, view.BaseSequence, lastSeq) is { } refused)
                {
                    return refused;
                }

                if (producer is { TxnFirstOffset: >= 0 } && !view.IsTransactional)
                {
                    return new AppendResult(AppendStatus.InvalidTxnState, -1);
                }
            }

            var baseOffset = _logEnd;
            RecordBatch.SetBaseOffset(batch, baseOffset);
            RecordBatch.SetPartitionLeaderEpoch(batch, leaderEpoch);
            var stored = new Stored(baseOffset, baseOffset + view.LastOffsetDelta, batch.ToArray());
            _batches.Add(stored);
            StartEpochAt(leaderEpoch, baseOffset);
            Volatile.Write(ref _logEnd, stored.LastOffset + 1);
            if (idempotent)
            {
                if (producer is null)
                {
                    _producers[view.ProducerId] = producer = new Producer(view.ProducerEpoch);
                }
                else if (producer.Epoch != view.ProducerEpoch)
                {
                    producer.Epoch = view.ProducerEpoch;
                    producer.Batches.Clear();
                }

                producer.LastTimestamp = view.MaxTimestamp;
                producer.Batches.Enqueue((view.BaseSequence, lastSeq, baseOffset, stored.LastOffset));
                while (producer.Batches.Count > RememberedBatches)
                {
                    producer.Batches.Dequeue();
                }

                if (view.IsTransactional && producer.TxnFirstOffset < 0)
                {
                    producer.TxnFirstOffset = baseOffset;
                    _open.Add((baseOffset, view.ProducerId));
                }
            }
            else if (marker is { } ended)
            {
                if (known is null)
                {
                    _producers[view.ProducerId] = known = new Producer(view.ProducerEpoch);
                }
                else if (known.Epoch != view.ProducerEpoch)
                {
                    known.Epoch = view.ProducerEpoch;
                    known.Batches.Clear();
                }

                known.CoordinatorEpoch = ended.CoordinatorEpoch;
                known.LastTimestamp = view.MaxTimestamp;
                if (known.TxnFirstOffset >= 0)
                {
                    var first = known.TxnFirstOffset;
                    known.TxnFirstOffset = -1;
                    _open.Remove((first, view.ProducerId));
                    var others = _open.Where(t => t.ProducerId != view.ProducerId).Select(t => t.First).DefaultIfEmpty(baseOffset + 1).Min();
                    _undecided.Add((first, baseOffset));
                    if (ended.Abort)
                    {
                        _aborted.Add((view.ProducerId, first, baseOffset, others));
                    }
                }
            }

            if (durabilityWanted)
            {
                MakeDurableSoon();
            }
            else if (!_lingering)
            {
                _lingering = true;
                _ = LingerAsync();
            }

            return new AppendResult(AppendStatus.Appended, baseOffset)
            {
                LastOffset = stored.LastOffset,
                LogAppendTime = view.IsLogAppendTime ? view.MaxTimestamp : -1,
                LogStartOffset = _logStart,
            };
        }
    }

    /// <summary>A marker's type (abort or not) and coordinator epoch, from its one control record; null for an empty control batch.</summary>
    private static (bool Abort, int CoordinatorEpoch)? Marker(RecordBatch batch)
    {
        foreach (var r in batch.GetRecords())
        {
            if (r.Key is { } key && ControlRecordBatch.TypeOf(key.Span) is { } type)
            {
                return (type == ControlRecordType.Abort, r.Value is { } value ? ControlRecordBatch.CoordinatorEpochOf(value.Span) : -1);
            }
        }

        return null;
    }

    /// <summary>Kafka's idempotence rules: null when the batch may be written, else the refusal (or the duplicate's offsets).</summary>
    private AppendResult? Check(Producer? producer, short epoch, int firstSeq, int lastSeq)
    {
        if (producer is null || epoch > producer.Epoch)
        {
            return firstSeq == 0 ? null : new AppendResult(AppendStatus.OutOfOrderSequence, -1);
        }

        if (epoch < producer.Epoch)
        {
            return new AppendResult(AppendStatus.InvalidProducerEpoch, -1);
        }

        foreach (var b in producer.Batches)
        {
            if (b.FirstSeq == firstSeq && b.LastSeq == lastSeq)
            {
                return new AppendResult(AppendStatus.Duplicate, b.BaseOffset) { LastOffset = b.LastOffset, LogStartOffset = _logStart };
            }
        }

        var expected = producer.Batches.Count == 0 ? 0 : producer.Batches.Last().LastSeq == int.MaxValue ? 0 : producer.Batches.Last().LastSeq + 1;
        return firstSeq == expected ? null : new AppendResult(AppendStatus.OutOfOrderSequence, -1);
    }

    private async Task LingerAsync()
    {
        await Task.Delay(linger).ConfigureAwait(false);
        lock (_lock)
        {
            _lingering = false;
        }

        MarkDurable();
    }

    /// <summary>
    /// Makes what was appended so far durable on a thread-pool thread; an append made after this
    /// call is not covered by it (it has a durability of its own to wait for).
    /// </summary>
    private void MakeDurableSoon()
    {
        var upTo = Volatile.Read(ref _logEnd);
        ThreadPool.QueueUserWorkItem(static s => s.Log.MarkDurable(s.UpTo), (Log: this, UpTo: upTo), preferLocal: false);
    }

    private void MarkDurable(long upTo = long.MaxValue)
    {
        List<TaskCompletionSource> ready = [];
        lock (_lock)
        {
            var durable = Math.Min(_logEnd, upTo);
            if (durable <= _highWatermark)
            {
                return;
            }

            Volatile.Write(ref _highWatermark, durable);
            _undecided.RemoveAll(t => t.Marker < durable);
            _waiters.RemoveAll(w =>
            {
                if (w.Offset <= _highWatermark)
                {
                    ready.Add(w.Done);
                    return true;
                }

                return false;
            });
        }

        foreach (var done in ready)
        {
            done.TrySetResult();
        }

        OnHighWatermarkAdvanced?.Invoke();
    }

    public Task WaitDurableAsync(long offset)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            if (_highWatermark >= offset)
            {
                return Task.CompletedTask;
            }

            _waiters.Add((offset, done));
        }

        MakeDurableSoon();
        return done.Task;
    }

    public void RequestDurableSoon()
    {
        if (HighWatermark < LogEndOffset)
        {
            MakeDurableSoon();
        }
    }

    public void Flush() => MarkDurable();

    public ReadOnlyMemory<byte> Read(long offset, int maxBytes, bool minOneBatch, long maxOffset) =>
        Read(offset, maxBytes, minOneBatch ? long.MaxValue : 0, maxOffset, rented: null);

    public ReadOnlyMemory<byte> Read(long offset, int maxBytes, long wholeFirstBatchUpTo, long maxOffset, List<byte[]>? rented)
    {
        List<Stored> picked = [];
        var total = 0;
        lock (_lock)
        {
            if (offset >= Math.Min(maxOffset, _logEnd))
            {
                return ReadOnlyMemory<byte>.Empty;
            }

            foreach (var b in _batches)
            {
                if (b.LastOffset < offset)
                {
                    continue;
                }

                if (b.BaseOffset >= maxOffset)
                {
                    break;
                }

                if (total + b.Bytes.Length > maxBytes && (total > 0 || b.Bytes.Length > wholeFirstBatchUpTo))
                {
                    break;
                }

                picked.Add(b);
                total += b.Bytes.Length;
            }
        }

        if (total == 0)
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        var buffer = rented is null ? new byte[total] : ArrayPool<byte>.Shared.Rent(total);
        rented?.Add(buffer);
        var at = 0;
        foreach (var b in picked)
        {
            b.Bytes.CopyTo(buffer, at);
            at += b.Bytes.Length;
        }

        return buffer.AsMemory(0, total);
    }

    public OffsetAndTimestamp? FindOffsetForTimestamp(long timestamp, long fromOffset = 0)
    {
        lock (_lock)
        {
            foreach (var b in _batches)
            {
                if (b.BaseOffset >= _highWatermark)
                {
                    return null;
                }

                var view = b.View;
                if (b.LastOffset >= fromOffset && (view.MaxTimestamp >= timestamp || view.MaxTimestamp < view.BaseTimestamp))
                {
                    return new OffsetAndTimestamp(Math.Max(b.BaseOffset, _logStart), view.MaxTimestamp);
                }
            }

            return null;
        }
    }

    public OffsetAndTimestamp? FindMaxTimestamp()
    {
        Stored? best = null;
        lock (_lock)
        {
            foreach (var b in _batches.TakeWhile(b => b.BaseOffset < _highWatermark))
            {
                if (best is null || b.View.MaxTimestamp > best.View.MaxTimestamp)
                {
                    best = b;
                }
            }
        }

        if (best is null)
        {
            return null;
        }

        var batch = best.View;
        if (batch.IsLogAppendTime)
        {
            return new OffsetAndTimestamp(batch.BaseOffset, batch.MaxTimestamp);
        }

        try
        {
            foreach (var r in batch.GetRecords())
            {
                if (batch.BaseTimestamp + r.TimestampDelta == batch.MaxTimestamp)
                {
                    return new OffsetAndTimestamp(batch.BaseOffset + r.OffsetDelta, batch.MaxTimestamp);
                }
            }
        }
        catch (KafkaProtocolException)
        {
            // Records that don't parse: the batch's last offset.
        }

        return new OffsetAndTimestamp(batch.LastOffset, batch.MaxTimestamp);
    }

    public void StartEpoch(int epoch)
    {
        lock (_lock)
        {
            StartEpochAt(epoch, _logEnd);
        }
    }

    /// <summary>A newer epoch starts at <paramref name="offset"/>; epochs that started there and held nothing are dropped.</summary>
    private void StartEpochAt(int epoch, long offset)
    {
        if (epoch < 0 || (_epochs.Count > 0 && epoch <= _epochs[^1].Epoch))
        {
            return;
        }

        _epochs.RemoveAll(e => e.StartOffset >= offset);
        _epochs.Add((epoch, offset));
    }

    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch)
    {
        lock (_lock)
        {
            if (epoch < 0 || _epochs.Count == 0)
            {
                return (-1, -1);
            }

            if (_epochs[^1].Epoch == epoch)
            {
                return (epoch, _logEnd);
            }

            var higher = _epochs.FindIndex(e => e.Epoch > epoch);
            return higher < 0 ? (-1, -1)
                : higher == 0 ? (epoch, _epochs[0].StartOffset)
                : (_epochs[higher - 1].Epoch, _epochs[higher].StartOffset);
        }
    }

    public int EpochForOffset(long offset)
    {
        lock (_lock)
        {
            return _epochs.LastOrDefault(e => e.StartOffset <= offset, (-1, -1)).Epoch;
        }
    }

    public IReadOnlyList<ActiveProducer> ActiveProducers()
    {
        lock (_lock)
        {
            return _producers.Select(p => new ActiveProducer(p.Key, p.Value.Epoch, p.Value.Batches.Count == 0 ? -1 : p.Value.Batches.Last().LastSeq, p.Value.LastTimestamp)
            {
                CurrentTxnStartOffset = p.Value.TxnFirstOffset,
                CoordinatorEpoch = p.Value.CoordinatorEpoch,
            }).ToList();
        }
    }

    public IReadOnlyList<AbortedTransaction> AbortedTransactions(long fetchOffset, long upperBoundOffset)
    {
        lock (_lock)
        {
            return [.. _aborted.Where(t => t.Marker >= fetchOffset && t.First < upperBoundOffset).Select(t => new AbortedTransaction(t.ProducerId, t.First))];
        }
    }

    public void AdvanceLogStartOffset(long offset)
    {
        lock (_lock)
        {
            if (offset <= _logStart)
            {
                return;
            }

            var start = Math.Min(offset, _logEnd);
            Volatile.Write(ref _logStart, start);
            _batches.RemoveAll(b => b.LastOffset < start);
            var covered = _epochs.FindLastIndex(e => e.StartOffset <= start);
            if (covered >= 0)
            {
                _epochs.RemoveRange(0, covered);
                _epochs[0] = (_epochs[0].Epoch, start);
            }
        }
    }

    /// <summary>Each batch is a segment of its own, then an empty one that appends go to.</summary>
    public IReadOnlyList<SegmentInfo> Segments()
    {
        lock (_lock)
        {
            return [.. _batches.Select(b => new SegmentInfo(b.BaseOffset, b.Bytes.Length, b.View.MaxTimestamp)), new SegmentInfo(_logEnd, 0, -1)];
        }
    }

    /// <summary>Never compacts: a backend may leave compaction out, and the cleaner then skips its logs.</summary>
    public CleaningResult? CleanIfDirty(CleanerSettings settings) => null;

    public void Dispose()
    {
        MarkDurable();
        lock (_lock)
        {
            _disposed = true;
        }
    }

    public PartitionLogOptions Options { get; private set; } = new();

    public void Reconfigure(PartitionLogOptions options) => Options = options;
}
