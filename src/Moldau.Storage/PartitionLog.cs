using System.Buffers.Binary;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>Where a batch with a given property sits.</summary>
/// <param name="Offset">The offset found.</param>
/// <param name="Timestamp">The timestamp that goes with it.</param>
public readonly record struct OffsetAndTimestamp(long Offset, long Timestamp);

/// <summary>
/// The log of one partition, laid out as Kafka lays it out: a directory
/// <c>&lt;topic&gt;-&lt;partition&gt;</c> of segments named by their 20-digit base offset, each holding
/// RecordBatch v2 bytes back to back with absolute offsets.
/// </summary>
/// <remarks>
/// Appends are serialized; reads run concurrently with them and never see a half-written batch,
/// because a segment publishes its new size only after the write returned. An append is a
/// pwrite: when it returns, the batch is in the page cache and readable by other processes.
/// </remarks>
public sealed partial class PartitionLog : IDisposable
{
    private volatile PartitionLogOptions _options;
    private TimeSpan _rollJitter;
    private readonly Lock _appendLock = new();
    private readonly ProducerStateTable _producers;
    private LogSegment[] _segments;
    private long _logEndOffset;
    private long _logStartOffset;
    private long _highWatermark;
    private readonly Lock _flushLock = new();
    private readonly List<(long Offset, TaskCompletionSource Done)> _durabilityWaiters = [];
    private readonly List<LogSegment> _retired = [];
    private readonly TimeProvider _time;
    private bool _flushing;
    private bool _disposed;
    private volatile bool _directoryDirty;
    private TaskCompletionSource? _lingerWake;
    private bool _wanted;

    private PartitionLog(string directory, PartitionLogOptions options, LogSegment[] segments, ProducerStateTable producers, TimeProvider time)
    {
        _time = time;
        _producers = producers;
        Directory = directory;
        _options = options;
        _segments = segments;
        foreach (var segment in segments)
        {
            segment.Created = segment.FirstBatchTimestamp >= 0 ? DateTimeOffset.FromUnixTimeMilliseconds(segment.FirstBatchTimestamp) : time.GetUtcNow();
        }
        _logEndOffset = segments[^1].NextOffset;
        _logStartOffset = segments[0].BaseOffset;
        _highWatermark = _logEndOffset;
        _rollJitter = RollJitter(options);
    }

    /// <summary>The log's settings now (one instance; <see cref="Reconfigure"/> replaces it whole).</summary>
    public PartitionLogOptions Options => _options;

    /// <summary>
    /// Takes new settings from a config change, without closing the log: size and age limits,
    /// index limits, flush policy, retention and compaction settings, and what appends are checked
    /// and stored with apply from the next append (a new index interval from the next segment).
    /// What only opening the log uses (recovery point, clean shutdown, direct I/O) stays as opened.
    /// </summary>
    public void Reconfigure(PartitionLogOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        lock (_appendLock)
        {
            var old = _options;
            var next = options with
            {
                DirectIo = old.DirectIo,
                CleanShutdown = old.CleanShutdown,
                InitialOffset = old.InitialOffset,
                RecoveryPoint = old.RecoveryPoint,
                CleanedUpTo = old.CleanedUpTo,
                FlushLinger = old.FlushLinger,
            };
            if (next.SegmentJitter != old.SegmentJitter || next.SegmentAge != old.SegmentAge)
            {
                _rollJitter = RollJitter(next);
            }

            _options = next;
        }
    }

    /// <summary>Kafka's <c>randomSegmentJitter</c>: a random part of segment.jitter.ms, below segment.ms, drawn per segment.</summary>
    private static TimeSpan RollJitter(PartitionLogOptions options)
    {
        var jitter = (long)Math.Min(options.SegmentJitter.TotalMilliseconds, options.SegmentAge.TotalMilliseconds);
        return jitter <= 0 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Random.Shared.NextInt64(jitter));
    }

    /// <summary>The partition's directory.</summary>
    public string Directory { get; }

    /// <summary>The offset the next appended record gets.</summary>
    public long LogEndOffset => Volatile.Read(ref _logEndOffset);

    /// <summary>The first offset still in the log.</summary>
    public long LogStartOffset => Volatile.Read(ref _logStartOffset);

    /// <summary>The offset up to which consumers may read (kept apart from the log end for the durability policy).</summary>
    public long HighWatermark => Volatile.Read(ref _highWatermark);

    /// <summary>Bytes truncated from a torn tail when the log was opened.</summary>
    public long RecoveredTruncatedBytes { get; private set; }

    /// <summary>
    /// Opening after an unclean stop lost records that had offsets: a torn tail was cut, or a
    /// segment's unsynced tail vanished while the next segment's file survived empty.
    /// </summary>
    public bool RecoveryLostRecords { get; private set; }

    /// <summary>
    /// Where opening found batches that don't add up although the clean-shutdown marker promised
    /// whole ones (a file and a position, for the log), or null.
    /// </summary>
    public string? CorruptionAfterCleanStop { get; private set; }

    /// <summary>Opens (or creates) the log in <paramref name="directory"/>, recovering a torn tail.</summary>
    public static PartitionLog Open(string directory, PartitionLogOptions options, TimeProvider time)
    {
        ArgumentNullException.ThrowIfNull(time);
        System.IO.Directory.CreateDirectory(directory);

        // Segments retired before a stop were waiting out their delete delay: they go now.
        foreach (var retired in System.IO.Directory.GetFiles(directory, "*" + LogSegment.DeletedSuffix))
        {
            File.Delete(retired);
        }

        // A cleaning pass the process did not finish: completed or dropped (PartitionLog.Cleaning.cs).
        CompleteInterruptedCleaning(directory);

        var files = System.IO.Directory.GetFiles(directory, "*.log")
            .Select(p => (Path: p, Base: long.TryParse(System.IO.Path.GetFileNameWithoutExtension(p), out var b) ? b : -1))
            .Where(f => f.Base >= 0)
            .OrderBy(f => f.Base)
            .ToList();
        var segments = new List<LogSegment>();
        var producers = new ProducerStateTable();
        long truncated = 0;
        var recoveryLeftAHole = false;
        string? corruption = null;
        var snapshots = SnapshotFiles(directory);
        var proven = ProvenLogEnd(directory, files, snapshots, options.RecoveryPoint);
        if (options.CleanShutdown)
        {
            // The marker promises whole batches; the last segment's tail (the batches after its
            // last index entry) is checked against their CRCs all the same, which costs at most an
            // index interval and a batch. Earlier segments are trusted as Kafka trusts them.
            for (var i = 0; i < files.Count; i++)
            {
                var (path, baseOffset) = files[i];
                var (segment, corruptAt) = LogSegment.Load(path, baseOffset, options.IndexIntervalBytes, options.DirectIo, verifyTail: i == files.Count - 1);
                segments.Add(segment);
                if (corruptAt >= 0)
                {
                    corruption ??= $"{path} is corrupt at position {corruptAt} although the log was closed cleanly";
                    truncated += Math.Max(1, new FileInfo(path).Length - corruptAt);
                }
            }

            // The producer state: the latest snapshot at or below the log end, then the batches after it.
            var end = segments.Count > 0 ? segments[^1].NextOffset : 0;
            var from = segments.Count > 0 ? segments[0].BaseOffset : 0;
            foreach (var (path, offset) in snapshots.Where(s => s.Offset <= end).OrderByDescending(s => s.Offset))
            {
                if (producers.LoadSnapshot(path))
                {
                    from = offset;
                    break;
                }
            }

            ReplayProducerState(segments, from, producers);
        }
        else
        {
            // Segments that end at or below the recovery point were durable, indexes included,
            // before the stop: they are loaded as they are. The rest are read through.
            var trusted = 0;
            while (trusted + 1 < files.Count && files[trusted + 1].Base <= options.RecoveryPoint)
            {
                segments.Add(LogSegment.Load(files[trusted].Path, files[trusted].Base, options.IndexIntervalBytes, options.DirectIo));
                trusted++;
            }

            ReplayProducerState(segments, 0, producers);
            foreach (var (path, baseOffset) in files.Skip(trusted))
            {
                if (truncated > 0)
                {
                    // Segments after a torn one can't be trusted to follow on: they go.
                    File.Delete(path);
                    continue;
                }

                var (segment, cut) = LogSegment.Recover(path, baseOffset, options.IndexIntervalBytes, producers, options.DirectIo);
                segments.Add(segment);
                truncated += cut;
            }

            // An empty last segment whose base lies past the end of the one before it: the file's
            // directory entry reached the disk (a journal commit can do that without our directory
            // fsync) while the tail of the previous segment did not. The offsets between were
            // assigned before the stop and are gone. They are not handed out again (the log end stays
            // at the empty segment's base, a hole readers step over); the loss counts as a cut, so
            // the partition gets a new leader epoch. (A compacted log can leave the same shape
            // legitimately; a needless epoch bump only makes clients check their positions.)
            recoveryLeftAHole = segments.Count > 1 && segments[^1].Size == 0 && segments[^2].NextOffset < segments[^1].BaseOffset;
        }

        if (segments.Count == 0)
        {
            segments.Add(LogSegment.Create(directory, options.InitialOffset, options.IndexIntervalBytes, options.DirectIo));
        }

        // Offsets are never handed out twice: when less is left than the files prove was there
        // (a cut after a clean stop, segments dropped after a torn one), the log goes on from what
        // they prove, past a hole that readers step over.
        if (proven > segments[^1].NextOffset)
        {
            if (segments[^1].Size == 0)
            {
                segments[^1].DisposeAndDelete();
                segments.RemoveAt(segments.Count - 1);
            }

            segments.Add(LogSegment.Create(directory, proven, options.IndexIntervalBytes, options.DirectIo));
            recoveryLeftAHole = true;
        }

        // Snapshots are only trusted right after a clean stop; a later one is written at the next.
        // (They go only once a segment named past the offsets they prove exists.)
        foreach (var (path, _) in snapshots)
        {
            File.Delete(path);
        }

        // What survived on disk becomes the high watermark only once it is fsynced: after a kill -9
        // the page cache may still hold writes that were never synced.
        foreach (var s in segments)
        {
            s.Flush();
        }

        DirectorySync.Sync(directory);
        // Closed segments whose index files were just rebuilt: synced too, so that all of the log
        // is below the recovery point from here on.
        if (!options.CleanShutdown)
        {
            foreach (var s in segments.Take(segments.Count - 1))
            {
                s.FlushIndexes();
            }
        }

        var log = new PartitionLog(directory, options, [.. segments], producers, time)
        {
            RecoveredTruncatedBytes = truncated,
            RecoveryLostRecords = truncated > 0 || recoveryLeftAHole,
            CorruptionAfterCleanStop = corruption,
        };
        log._recoveryPoint = log.LogEndOffset;
        log._cleanedUpTo = Math.Clamp(options.CleanedUpTo, 0, log.LogEndOffset);
        log.LoadLeaderEpochs();
        return log;
    }

    /// <summary>
    /// The log end the files on disk prove was reached, whatever is left of the batches: the base
    /// offsets in segment names, the last entry of each offset index, producer snapshots (named by
    /// the log end at a clean stop), the start of the newest leader epoch, and the recovery point.
    /// </summary>
    private static long ProvenLogEnd(string directory, List<(string Path, long Base)> files, List<(string Path, long Offset)> snapshots, long recoveryPoint)
    {
        // The checkpoint is kept by topic name: it speaks for this directory only when it has segments.
        var proven = files.Count > 0 ? Math.Max(0, recoveryPoint) : 0;
        foreach (var (path, baseOffset) in files)
        {
            proven = Math.Max(proven, Math.Max(baseOffset, LogSegment.IndexedEnd(path, baseOffset)));
        }

        foreach (var (_, offset) in snapshots)
        {
            proven = Math.Max(proven, offset);
        }

        if (LeaderEpochCache.Load(directory) is { Entries: [.., var newest] })
        {
            proven = Math.Max(proven, newest.StartOffset);
        }

        return proven;
    }

    private static List<(string Path, long Offset)> SnapshotFiles(string directory) =>
        System.IO.Directory.GetFiles(directory, "*.snapshot")
            .Select(p => (Path: p, Offset: long.TryParse(System.IO.Path.GetFileNameWithoutExtension(p), out var o) ? o : -1))
            .Where(f => f.Offset >= 0)
            .ToList();

    /// <summary>Feeds the producer state the headers of the batches at or after <paramref name="from"/>.</summary>
    private static void ReplayProducerState(List<LogSegment> segments, long from, ProducerStateTable producers)
    {
        var header = new byte[RecordBatch.HeaderSize];
        foreach (var segment in segments.Where(s => s.NextOffset > from))
        {
            var size = segment.Size;
            for (var position = segment.LookupPosition(from); position + RecordBatch.HeaderSize <= size; position += RecordBatch.DeclaredSize(header))
            {
                segment.Read(header, position);
                var last = BinaryPrimitives.ReadInt64BigEndian(header) + BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(23));
                if (last >= from && ProducerStateTable.Tracks(header))
                {
                    producers.Update(header);
                }
            }
        }
    }

    /// <summary>
    /// Appends one validated batch: rewrites its base offset to the log end and its partition
    /// leader epoch (both outside the CRC) in place, writes it, and returns its base offset. A
    /// batch of an idempotent producer is first checked against that producer's sequence: a
    /// retry of one of its last five batches is not written again and gets its original offset.
    /// </summary>
    public AppendResult Append(Span<byte> batch, int leaderEpoch, bool durabilityWanted = false)
    {
        // compression.type other than "producer": a batch in another codec is stored re-compressed
        // (Kafka's LogValidator), and the copy must still fit max.message.bytes.
        var settings = _options;
        if (settings.Compression is { } codec && RecordCompression.CodecOf(batch) != codec)
        {
            batch = RecordCompression.Recompress(batch, codec);
            if (batch.Length > settings.MaxMessageBytes)
            {
                return new AppendResult(AppendStatus.MessageTooLarge, -1);
            }
        }

        lock (_appendLock)
        {
            var tracked = ProducerStateTable.Tracks(batch);
            if (tracked)
            {
                var check = _producers.Check(batch);
                if (check.Status != AppendStatus.Appended)
                {
                    return check;
                }
            }

            var baseOffset = _logEndOffset;
            RecordBatch.SetBaseOffset(batch, baseOffset);
            RecordBatch.SetPartitionLeaderEpoch(batch, leaderEpoch);
            RecordEpochStart(leaderEpoch, baseOffset);
            var next = baseOffset + BinaryPrimitives.ReadInt32BigEndian(batch[23..]) + 1;
            var active = _segments[^1];
            try
            {
                var options = _options;
                if (active.Size > 0 && (active.Size + batch.Length > options.SegmentBytes
                    || _time.GetUtcNow() - active.Created >= options.MaxSegmentAge - _rollJitter
                    || active.IndexFull(options.MaxIndexBytes)))
                {
                    active.OnRolled();
                    _indexesToSync.Enqueue(active);
                    active = LogSegment.Create(Directory, baseOffset, options.IndexIntervalBytes, options.DirectIo);
                    active.Created = _time.GetUtcNow();
                    _rollJitter = RollJitter(options);
                    _segments = [.. _segments, active];
                    _directoryDirty = true;
                }

                active.Append(batch);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw AppendFailed(active, e);
            }

            AppendSucceeded();
            if (tracked)
            {
                _producers.Update(batch);
            }

            Volatile.Write(ref _logEndOffset, next);
            if (_options.SyncBeforeAck)
            {
                RequestFlush(linger: !durabilityWanted);
            }
            else
            {
                Volatile.Write(ref _highWatermark, next);
                OnHighWatermarkAdvanced?.Invoke();
                FlushByKafkaSettings(next - baseOffset);
            }

            return new AppendResult(AppendStatus.Appended, baseOffset);
        }
    }

    // Disk errors (issue 4). A failed append leaves the log as it was before it: the bytes a
    // partial write left past the segment's size are cut, the log end and producer state don't
    // move. The log keeps serving reads, and every append tries the disk again, so the partition
    // recovers by itself once space returns.
    private IOException? _storageError;

    /// <summary>The error of the last append while appends fail (a full disk, a failing device); null once one succeeds.</summary>
    public IOException? StorageError => Volatile.Read(ref _storageError);

    /// <summary>Called, under the append lock, when appends start failing (with the error) and when they work again (with null).</summary>
    public Action<IOException?>? OnStorageErrorChanged { get; set; }

    private IOException AppendFailed(LogSegment active, Exception e)
    {
        try
        {
            // A short write on a full disk leaves part of the batch in the file, beyond Size where
            // no reader looks; the next append would follow it, so it goes now.
            RandomAccess.SetLength(active.Handle, active.Size);
        }
        catch (Exception cut) when (cut is IOException or UnauthorizedAccessException)
        {
            // Still safe: the next append writes at Size over those bytes, and recovery cuts any
            // that remain beyond the last whole batch.
        }

        var error = e as IOException ?? new IOException(e.Message, e);
        var first = Interlocked.Exchange(ref _storageError, error) is null;
        if (first)
        {
            OnStorageErrorChanged?.Invoke(error);
        }

        return error;
    }

    private void AppendSucceeded()
    {
        if (Volatile.Read(ref _storageError) is not null && Interlocked.Exchange(ref _storageError, null) is not null)
        {
            OnStorageErrorChanged?.Invoke(null);
        }
    }

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
        lock (_flushLock)
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
        lock (_flushLock)
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
            Flusher.Enqueue(FlushLoop);
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

        lock (_flushLock)
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
            lock (_flushLock)
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
                lock (_flushLock)
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
            lock (_flushLock)
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
            lock (_flushLock)
            {
                _lingerWake = null;
            }

            Flusher.Enqueue(FlushLoop);
        }
    }

    // Segments rolled since the last flush: their index files are synced by the next flush, so
    // that everything below the recovery point can be trusted without reading it through.
    private readonly System.Collections.Concurrent.ConcurrentQueue<LogSegment> _indexesToSync = new();
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
        try
        {
            foreach (var s in _segments)
            {
                s.Flush();
            }

            if (newSegment)
            {
                DirectorySync.Sync(Directory);
            }

            SyncRolledIndexes();
        }
        catch
        {
            _directoryDirty |= newSegment;
            throw;
        }
    }

    private void SyncRolledIndexes()
    {
        while (_indexesToSync.TryPeek(out var segment))
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

            _indexesToSync.TryDequeue(out _);
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
        lock (_flushLock)
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

        foreach (var r in ready)
        {
            r.TrySetResult();
        }

        OnHighWatermarkAdvanced?.Invoke();
    }

    /// <summary>
    /// Reads whole batches starting with the one that holds <paramref name="offset"/>, up to
    /// <paramref name="maxBytes"/> (at least one batch when <paramref name="minOneBatch"/>), and
    /// none that starts at or beyond <paramref name="maxOffset"/>. Empty at the log end.
    /// </summary>
    public ReadOnlyMemory<byte> Read(long offset, int maxBytes, bool minOneBatch, long maxOffset) =>
        Read(offset, maxBytes, minOneBatch ? long.MaxValue : 0, maxOffset, rented: null);

    /// <summary>
    /// As <see cref="Read(long, int, bool, long)"/>, reading into a buffer rented from
    /// <c>ArrayPool&lt;byte&gt;.Shared</c> that is added to <paramref name="rented"/> for the caller to
    /// return. A first batch larger than <paramref name="maxBytes"/> is returned whole when it is
    /// at most <paramref name="wholeFirstBatchUpTo"/> bytes.
    /// </summary>
    public ReadOnlyMemory<byte> Read(long offset, int maxBytes, long wholeFirstBatchUpTo, long maxOffset, List<byte[]>? rented)
    {
        var segments = _segments;
        var index = SegmentFor(segments, offset);
        if (index < 0 || offset >= Math.Min(maxOffset, LogEndOffset))
        {
            return ReadOnlyMemory<byte>.Empty;
        }

        // Find the batch holding the offset, in this segment or (if it ended) the next.
        Span<byte> header = stackalloc byte[RecordBatch.HeaderSize];
        for (; index < segments.Length; index++)
        {
            var segment = segments[index];
            var size = segment.Size;
            var position = segment.LookupPosition(offset);
            while (position + RecordBatch.HeaderSize <= size)
            {
                segment.Read(header, position);
                var batchSize = RecordBatch.DeclaredSize(header);
                var lastOffset = BinaryPrimitives.ReadInt64BigEndian(header) + BinaryPrimitives.ReadInt32BigEndian(header[23..]);
                if (lastOffset >= offset)
                {
                    return ReadFrom(segment, position, size, maxBytes, wholeFirstBatchUpTo, maxOffset, rented);
                }

                position += batchSize;
            }
        }

        return ReadOnlyMemory<byte>.Empty;
    }

    private static ReadOnlyMemory<byte> ReadFrom(LogSegment segment, long position, long size, int maxBytes, long wholeFirstBatchUpTo, long maxOffset, List<byte[]>? rented)
    {
        // Read what the limit allows, then cut at the last whole batch below maxOffset. When the
        // first batch alone is larger than the limit it is returned whole anyway, as Kafka does:
        // then exactly that batch is read.
        var want = (int)Math.Min(Math.Max(maxBytes, 0), size - position);
        if (wholeFirstBatchUpTo > want && position + RecordBatch.LogOverhead <= size)
        {
            Span<byte> header = stackalloc byte[RecordBatch.LogOverhead];
            segment.Read(header, position);
            var first = RecordBatch.DeclaredSize(header);
            if (BinaryPrimitives.ReadInt64BigEndian(header) >= maxOffset || position + first > size)
            {
                return ReadOnlyMemory<byte>.Empty;
            }

            if (first <= wholeFirstBatchUpTo)
            {
                want = (int)Math.Max(want, first);
            }
        }

        var length = Math.Max(want, RecordBatch.LogOverhead);
        byte[] buffer;
        if (rented is not null)
        {
            buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
            rented.Add(buffer);
        }
        else
        {
            buffer = new byte[length];
        }

        var read = segment.Read(buffer.AsSpan(0, want), position, readAhead: rented is not null);
        var end = 0;
        while (end + RecordBatch.LogOverhead <= read)
        {
            var batchSize = RecordBatch.DeclaredSize(buffer.AsSpan(end));
            var baseOffset = BinaryPrimitives.ReadInt64BigEndian(buffer.AsSpan(end));
            if (end + batchSize > read || baseOffset >= maxOffset)
            {
                break;
            }

            end += (int)batchSize;
        }

        // A slice, not a trimmed copy: the fetch path copies these bytes once, into the response.
        return buffer.AsMemory(0, end);
    }

    private static int SegmentFor(LogSegment[] segments, long offset)
    {
        for (var i = segments.Length - 1; i >= 0; i--)
        {
            if (segments[i].BaseOffset <= offset)
            {
                return i;
            }
        }

        return segments.Length > 0 ? 0 : -1;
    }

    /// <summary>
    /// The first batch at or after <paramref name="fromOffset"/> that may hold a record stamped at or
    /// after <paramref name="timestamp"/>: its max timestamp says so, or its max timestamp is below
    /// its base timestamp (some clients, sarama 1.22 among them, leave it unset), so only its records
    /// can tell. Returns the batch's base offset and that max timestamp.
    /// </summary>
    public OffsetAndTimestamp? FindOffsetForTimestamp(long timestamp, long fromOffset = 0)
    {
        // Segments whose largest timestamp is below the target are skipped; in the first that
        // may hold it, the time index says where to start reading batch headers.
        var header = new byte[RecordBatch.HeaderSize];
        var highWatermark = HighWatermark;
        var logStart = LogStartOffset;
        foreach (var segment in _segments)
        {
            if (segment.NextOffset <= fromOffset || (segment.MaxTimestamp < timestamp && !segment.HasUnsetTimestamps))
            {
                continue;
            }

            var size = segment.Size;
            var position = Math.Max(segment.LookupTimestampPosition(timestamp), segment.LookupPosition(fromOffset));
            for (; position + RecordBatch.HeaderSize <= size; position += RecordBatch.DeclaredSize(header))
            {
                segment.Read(header, position);
                var baseOffset = BinaryPrimitives.ReadInt64BigEndian(header);
                if (baseOffset >= highWatermark)
                {
                    return null;
                }

                var lastOffset = baseOffset + BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(23));
                var baseTimestamp = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(27));
                var maxTimestamp = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(35));
                if (lastOffset >= fromOffset && (maxTimestamp >= timestamp || maxTimestamp < baseTimestamp))
                {
                    return new OffsetAndTimestamp(Math.Max(baseOffset, logStart), maxTimestamp);
                }
            }
        }

        return null;
    }

    /// <summary>
    /// ListOffsets MAX_TIMESTAMP (KIP-734): the first record holding the largest timestamp below
    /// the high watermark, and that timestamp; null when the log is empty. The batch headers find
    /// the batch (the first whose max timestamp is the largest), its records the offset, as Kafka
    /// does since KAFKA-16310; a log-append-time batch stamps every record alike, so its first.
    /// </summary>
    public OffsetAndTimestamp? FindMaxTimestamp()
    {
        (long BaseOffset, long LastOffset, long Timestamp)? best = null;
        WalkHeaders((baseOffset, lastOffset, _, maxTimestamp) =>
        {
            if (best is null || maxTimestamp > best.Value.Timestamp)
            {
                best = (baseOffset, lastOffset, maxTimestamp);
            }

            return true;
        });
        if (best is not { } found)
        {
            return null;
        }

        var bytes = Read(found.BaseOffset, 1, minOneBatch: true, HighWatermark);
        if (bytes.Length >= RecordBatch.HeaderSize && RecordBatch.DeclaredSize(bytes.Span) <= bytes.Length)
        {
            var batch = new RecordBatch(bytes[..(int)RecordBatch.DeclaredSize(bytes.Span)]);
            if (batch.BaseOffset == found.BaseOffset)
            {
                if (batch.IsLogAppendTime)
                {
                    return new OffsetAndTimestamp(batch.BaseOffset, found.Timestamp);
                }

                try
                {
                    foreach (var r in batch.GetRecords())
                    {
                        if (batch.BaseTimestamp + r.TimestampDelta == found.Timestamp)
                        {
                            return new OffsetAndTimestamp(batch.BaseOffset + r.OffsetDelta, found.Timestamp);
                        }
                    }
                }
                catch (Moldau.Protocol.KafkaProtocolException)
                {
                    // Records that don't parse: the batch's last offset, as before KAFKA-16310.
                }
            }
        }

        return new OffsetAndTimestamp(found.LastOffset, found.Timestamp);
    }

    private void WalkHeaders(Func<long, long, long, long, bool> visit)
    {
        var header = new byte[RecordBatch.HeaderSize];
        var highWatermark = HighWatermark;
        foreach (var segment in _segments)
        {
            var size = segment.Size;
            for (long position = 0; position + RecordBatch.HeaderSize <= size;)
            {
                segment.Read(header, position);
                var baseOffset = BinaryPrimitives.ReadInt64BigEndian(header);
                if (baseOffset >= highWatermark)
                {
                    return;
                }

                var lastOffset = baseOffset + BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(23));
                if (!visit(baseOffset, lastOffset, BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(27)), BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(35))))
                {
                    return;
                }

                position += RecordBatch.DeclaredSize(header);
            }
        }
    }

    /// <summary>Each segment's base offset, size and largest timestamp, oldest first; the last is the active one.</summary>
    public IReadOnlyList<(long BaseOffset, long Size, long MaxTimestamp)> Segments() =>
        _segments.Select(s => (s.BaseOffset, s.Size, s.MaxTimestamp)).ToList();

    /// <summary>Bytes of all segments.</summary>
    public long SizeInBytes => _segments.Sum(s => s.Size);

    /// <summary>
    /// Moves the log start offset forward (DeleteRecords, retention): offsets below it are no longer
    /// served, and segments wholly below it are deleted.
    /// </summary>
    public void AdvanceLogStartOffset(long offset)
    {
        lock (_appendLock)
        {
            if (offset <= _logStartOffset)
            {
                return;
            }

            Volatile.Write(ref _logStartOffset, Math.Min(offset, _logEndOffset));
            _leaderEpochs.TruncateFromStart(_logStartOffset);
            var keep = _segments.ToList();
            var gone = new List<LogSegment>();
            while (keep.Count > 1 && keep[1].BaseOffset <= offset)
            {
                gone.Add(keep[0]);
                keep.RemoveAt(0);
            }

            _segments = [.. keep];
            foreach (var segment in gone)
            {
                Retire(segment);
            }
        }
    }

    /// <summary>
    /// Takes a segment out of the log as Kafka does: renamed to <c>.deleted</c> at once (so a
    /// restart drops it), its file closed and removed only after <c>file.delete.delay.ms</c>, so
    /// a fetch or flush that picked it up just before still completes.
    /// </summary>
    private void Retire(LogSegment segment)
    {
        segment.MarkDeleted();
        lock (_retired)
        {
            _retired.Add(segment);
        }

        _ = DeleteLaterAsync(segment);
    }

    private async Task DeleteLaterAsync(LogSegment segment)
    {
        try
        {
            await Task.Delay(_options.FileDeleteDelay, _time).ConfigureAwait(false);
        }
        finally
        {
            lock (_retired)
            {
                if (_retired.Remove(segment))
                {
                    segment.DisposeAndDelete();
                }
            }
        }
    }

    /// <summary>The idempotent producers this partition knows (DescribeProducers).</summary>
    public IReadOnlyList<(long ProducerId, short Epoch, int LastSequence)> ActiveProducers()
    {
        lock (_appendLock)
        {
            return _producers.Snapshot();
        }
    }

    /// <summary>True once <see cref="Dispose"/> synced everything a clean start relies on.</summary>
    public bool ClosedCleanly { get; private set; }

    /// <summary>Flushes, then closes every segment file.</summary>
    public void Dispose()
    {
        lock (_flushLock)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
        }

        lock (_appendLock)
        {
            try
            {
                // A clean close: data, indexes and the producer state on disk, so the next start
                // can trust them instead of reading the log through.
                _segments[^1].TrimPadding();
                Flush();
                foreach (var s in _segments)
                {
                    s.FlushIndexes();
                }

                _producers.WriteSnapshot(System.IO.Path.Combine(Directory, ProducerStateTable.SnapshotFileName(LogEndOffset)));
                DirectorySync.Sync(Directory);
                ClosedCleanly = true;
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
            {
            }
        }

        foreach (var s in _segments)
        {
            s.Dispose();
        }

        lock (_retired)
        {
            foreach (var s in _retired)
            {
                s.DisposeAndDelete();
            }

            _retired.Clear();
        }
    }
}
