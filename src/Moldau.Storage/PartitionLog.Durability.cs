namespace Moldau.Storage;

/// <summary>
/// When a partition log reaches the disk: the flush episodes on the runtime's flusher threads
/// (group commit for acks=all, a linger for acks=1), Kafka's own flush.messages / flush.ms when
/// set, and the high watermark and recovery point that move with the fsyncs.
/// </summary>
public sealed partial class PartitionLog
{
    // Kafka's own flush settings (flush.messages / flush.ms and the broker's log.flush.interval.*),
    // in force when set: the page cache is trusted between flushes, as in Kafka.
    private long _unflushedMessages;
    private bool _flushTimerPending;

    /// <summary>
    /// After an append under Kafka's flush settings (called under the append lock): fsync at once
    /// once <c>flush.messages</c> messages are unflushed, as Kafka does in its append path, and
    /// otherwise within <c>flush.ms</c> of the first unflushed one.
    /// </summary>
    private void FlushByKafkaSettings(long messages)
    {
        _unflushedMessages += messages;
        if (_unflushedMessages >= _options.FlushMessages)
        {
            try
            {
                SyncToDisk();
                _unflushedMessages = 0;
                MarkRecoveryPoint(LogEndOffset);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The batch is written; the next append tries the fsync again.
            }

            return;
        }

        if (_options.FlushInterval is { } interval && !_flushTimerPending)
        {
            _flushTimerPending = true;
            _ = FlushAfterIntervalAsync(interval);
        }
    }

    private async Task FlushAfterIntervalAsync(TimeSpan interval)
    {
        await Task.Delay(interval, _time).ConfigureAwait(false);
        lock (_appendLock)
        {
            _flushTimerPending = false;
            if (_disposed || _unflushedMessages == 0)
            {
                return;
            }

            _unflushedMessages = 0;
            try
            {
                SyncToDisk();
                MarkRecoveryPoint(LogEndOffset);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException)
            {
                // The next append or interval tries again; the page cache still holds the data.
            }
        }
    }

    /// <summary>Called (on the flushing thread) when the high watermark moved forward.</summary>
    public Action? OnHighWatermarkAdvanced { get; set; }

    /// <summary>fsyncs every segment now and moves the high watermark to what was written before.</summary>
    public void Flush()
    {
        var target = LogEndOffset;
        SyncToDisk();
        MarkDurable(target);
    }

    /// <summary>
    /// Completes when everything below <paramref name="offset"/> is fsynced. Group commit: one
    /// fsync covers every append made before it started, so concurrent acks=all producers share it.
    /// </summary>
    public Task WaitDurableAsync(long offset)
    {
        if (!_options.SyncBeforeAck || HighWatermark >= offset)
        {
            return Task.CompletedTask;
        }

        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_durabilityWaiters)
        {
            if (HighWatermark >= offset)
            {
                return Task.CompletedTask;
            }

            _durabilityWaiters.Add((offset, done));
            _lingerWake?.TrySetResult();
        }

        RequestFlush();
        return done.Task;
    }

    /// <summary>
    /// Starts a flush episode unless one runs. With <paramref name="linger"/> (an acks=1 append,
    /// nobody waiting yet) the fsync waits up to <see cref="PartitionLogOptions.FlushLinger"/>
    /// first, so it covers more appends; a durability waiter or a reader cuts the wait short.
    /// </summary>
    private void RequestFlush(bool linger = false)
    {
        TaskCompletionSource? wake = null;
        lock (_durabilityWaiters)
        {
            if (_flushing || _disposed)
            {
                return;
            }

            _flushing = true;
            if (linger && _options.FlushLinger > TimeSpan.Zero && _durabilityWaiters.Count == 0 && !_wanted)
            {
                wake = _lingerWake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }
        }

        if (wake is null)
        {
            _runtime.Flushers.Enqueue(FlushLoop);
        }
        else
        {
            _ = FlushAfterLingerAsync(wake);
        }
    }

    /// <summary>
    /// A reader waits at the high watermark (a fetch, ListOffsets) while appends are not yet
    /// durable: the pending fsync starts now instead of after its linger.
    /// </summary>
    public void RequestDurableSoon()
    {
        if (!_options.SyncBeforeAck || HighWatermark >= LogEndOffset)
        {
            return;
        }

        lock (_durabilityWaiters)
        {
            _wanted = true;
            _lingerWake?.TrySetResult();
        }

        RequestFlush();
    }

    private void FlushLoop()
    {
        while (true)
        {
            lock (_durabilityWaiters)
            {
                _wanted = false;
            }

            var target = LogEndOffset;
            try
            {
                SyncToDisk();
            }
            catch (Exception e)
            {
                // Waiters stay pending until a later flush succeeds (or the log closes); the
                // high watermark does not pass data that is not on disk.
                lock (_durabilityWaiters)
                {
                    _flushing = false;
                    foreach (var w in _durabilityWaiters)
                    {
                        w.Done.TrySetException(new IOException($"fsync of {Directory} failed: {e.Message}", e));
                    }

                    _durabilityWaiters.Clear();
                }

                return;
            }

            MarkDurable(target);
            TaskCompletionSource? wake = null;
            lock (_durabilityWaiters)
            {
                if (LogEndOffset == target || _disposed)
                {
                    _flushing = false;
                    return;
                }

                if (_durabilityWaiters.Count == 0 && !_wanted && _options.FlushLinger > TimeSpan.Zero)
                {
                    // Only acks=1 appends since, and nobody waits for them: the next fsync may
                    // gather them for a while instead of running back to back with this one.
                    wake = _lingerWake = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                }
            }

            if (wake is not null)
            {
                _ = FlushAfterLingerAsync(wake);
                return;
            }
        }
    }

    private async Task FlushAfterLingerAsync(TaskCompletionSource wake)
    {
        // An acks=all waiter (WaitDurableAsync) or a reader (RequestDurableSoon) cuts the pause short.
        using var timer = new CancellationTokenSource(_options.FlushLinger, _time);
        try
        {
            await wake.Task.WaitAsync(timer.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The linger ran out.
        }
        finally
        {
            lock (_durabilityWaiters)
            {
                _lingerWake = null;
            }

            _runtime.Flushers.Enqueue(FlushLoop);
        }
    }

    // Segments rolled since the last flush: their index files are synced by the next flush, so
    // that everything below the recovery point can be trusted without reading it through. Made at
    // the first roll: an empty queue is a 32-slot segment (about 770 B), and most logs never roll.
    private System.Collections.Concurrent.ConcurrentQueue<LogSegment>? _indexesToSync;
    private long _recoveryPoint;

    /// <summary>
    /// The offset below which the log, its closed segments' index files included, is known to be on
    /// disk: what Kafka keeps in <c>recovery-point-offset-checkpoint</c>.
    /// </summary>
    public long RecoveryPoint => Volatile.Read(ref _recoveryPoint);

    /// <summary>
    /// The one way the log reaches the disk: every segment with unsynced appends, then the
    /// directory when a segment was created since the last time, then the index files of segments
    /// rolled since. Data comes before the directory: a new segment's entry must be durable before
    /// the data in it counts, and should not outlive the unsynced tail of the segment before it.
    /// </summary>
    private void SyncToDisk()
    {
        var newSegment = _directoryDirty;
        _directoryDirty = false;
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            foreach (var s in _segments)
            {
                s.Flush();
            }

            // A new log's leader-epoch checkpoint waits for its first flush (PartitionLog.Creating.cs).
            newSegment |= _leaderEpochs.WriteDeferred();
            if (newSegment)
            {
                DirectorySync.Sync(Directory, _runtime.Files);
            }

            SyncRolledIndexes();
            StorageMetrics.Flushed(started);
        }
        catch
        {
            _directoryDirty |= newSegment;
            throw;
        }
    }

    /// <summary>Queues a rolled (or cleaned) segment's index files for the next flush.</summary>
    private void SyncIndexesLater(LogSegment segment)
    {
        if (Volatile.Read(ref _indexesToSync) is not { } queue)
        {
            var made = new System.Collections.Concurrent.ConcurrentQueue<LogSegment>();
            queue = Interlocked.CompareExchange(ref _indexesToSync, made, null) ?? made;
        }

        queue.Enqueue(segment);
    }

    private void SyncRolledIndexes()
    {
        var queue = Volatile.Read(ref _indexesToSync);
        while (queue is not null && queue.TryPeek(out var segment))
        {
            try
            {
                segment.FlushIndexes();
            }
            catch (ObjectDisposedException)
            {
                // Retention or the cleaner took the segment out of the log (and closed it) before
                // this flush: its index files no longer matter. Left queued, it would fail every flush.
            }

            queue.TryDequeue(out _);
        }
    }

    private void MarkRecoveryPoint(long offset)
    {
        long current;
        while ((current = Volatile.Read(ref _recoveryPoint)) < offset && Interlocked.CompareExchange(ref _recoveryPoint, offset, current) != current)
        {
        }
    }

    private void MarkDurable(long target)
    {
        MarkRecoveryPoint(target);
        List<TaskCompletionSource> ready = [];
        lock (_durabilityWaiters)
        {
            if (target <= _highWatermark)
            {
                return;
            }

            Volatile.Write(ref _highWatermark, target);
            _durabilityWaiters.RemoveAll(w =>
            {
                if (w.Offset <= target)
                {
                    ready.Add(w.Done);
                    return true;
                }

                return false;
            });
        }

        // Transactions whose marker is now durable turn stable before the fetches waiting on the
        // last stable offset wake.
        _producers.HighWatermarkMoved(target);
        foreach (var r in ready)
        {
            r.TrySetResult();
        }

        OnHighWatermarkAdvanced?.Invoke();
    }
}
