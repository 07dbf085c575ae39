using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// The local <see cref="IPartitionLog"/>: the log of one partition, laid out as Kafka lays it
/// out: a directory <c>&lt;topic&gt;-&lt;partition&gt;</c> of segments named by their 20-digit base
/// offset, each holding RecordBatch v2 bytes back to back with absolute offsets.
/// </summary>
/// <remarks>
/// Appends are serialized; reads run concurrently with them and never see a half-written batch,
/// because a segment publishes its new size only after the write returned. An append is a
/// pwrite: when it returns, the batch is in the page cache and readable by other processes.
/// </remarks>
public sealed partial class PartitionLog : IPartitionLog
{
    private volatile PartitionLogOptions _options;
    private TimeSpan _rollJitter;
    private readonly Lock _appendLock = new();
    private readonly ProducerStateTable _producers;
    private LogSegment[] _segments;
    private long _logEndOffset;
    private long _logStartOffset;
    private long _highWatermark;
    // Also the flush lock, guarding the flush episode's state: a Lock of its own is 40 B more per log.
    private readonly List<(long Offset, TaskCompletionSource Done)> _durabilityWaiters = [];
    private readonly List<LogSegment> _retired = [];
    private readonly TimeProvider _time;
    private bool _flushing;
    private bool _disposed;
    private volatile bool _directoryDirty;

    // The offset of the producer snapshot on disk that holds the producer state at that log end
    // (kept at a clean open, or written at the close); -1 when there is none.
    private long _snapshotAt = -1;
    private TaskCompletionSource? _lingerWake;
    private bool _wanted;
    private readonly StorageRuntime _runtime;
    private readonly bool _ownsRuntime;

    private PartitionLog(string directory, PartitionLogOptions options, LogSegment[] segments, ProducerStateTable producers, TimeProvider time, StorageRuntime runtime, bool ownsRuntime)
    {
        _time = time;
        _runtime = runtime;
        _ownsRuntime = ownsRuntime;
        _producers = producers;
        Directory = directory;
        _options = Shared(options);
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

    /// <summary>Whether the active segment writes with O_DIRECT (false on a file system that refuses it).</summary>
    internal bool UsesDirectIo => Volatile.Read(ref _segments)[^1].UsesDirectIo;

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

            _options = Shared(next);
        }
    }

    // Equal settings are one instance across logs (a topic's partitions, usually all of them):
    // 200 B less per partition. Bounded, so a process that sees endless variants (tests) stops
    // sharing new ones rather than growing.
    private const int SharedOptionsMax = 1024;
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<PartitionLogOptions, PartitionLogOptions> SharedOptions = new();

    /// <summary>
    /// The options a log keeps once open: the per-log fields only opening reads (recovery point,
    /// cleaned-up-to offset, clean shutdown, initial offset) cleared, and an equal instance shared.
    /// </summary>
    private static PartitionLogOptions Shared(PartitionLogOptions options)
    {
        var settled = options with { CleanShutdown = false, InitialOffset = 0, RecoveryPoint = 0, CleanedUpTo = 0 };
        if (SharedOptions.TryGetValue(settled, out var shared))
        {
            return shared;
        }

        return SharedOptions.Count < SharedOptionsMax ? SharedOptions.GetOrAdd(settled, settled) : settled;
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

    /// <summary>
    /// Kafka's last stable offset: the first unstable offset (a transaction open here, or ended by
    /// a marker not yet below the high watermark), not below the log start, bounded by the high
    /// watermark; the high watermark when no transaction is unstable.
    /// </summary>
    public long LastStableOffset
    {
        get
        {
            // The high watermark first: a transaction that starts after this read starts at or
            // past it, so the pair read never lets the answer pass an open transaction.
            var highWatermark = HighWatermark;
            var unstable = _producers.FirstUnstableOffset;
            return unstable >= highWatermark ? highWatermark : Math.Min(Math.Max(unstable, LogStartOffset), highWatermark);
        }
    }

    // Set once a segment of the log has a transaction index: until then a read_committed fetch
    // finds no aborted transaction without looking at any segment.
    private volatile bool _hasTxnIndexes;

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

    /// <summary>
    /// Appends one validated batch: rewrites its base offset to the log end and its partition
    /// leader epoch (both outside the CRC) in place, writes it, and returns its base offset. A
    /// batch of an idempotent producer is first checked against that producer's sequence: a
    /// retry of one of its last five batches is not written again and gets its original offset.
    /// </summary>
    public AppendResult Append(Span<byte> batch, int leaderEpoch, bool durabilityWanted = false)
    {
        // compression.type other than "producer": a batch in another codec is stored re-compressed
        // (Kafka's LogValidator), and the copy must still fit max.message.bytes. A transaction
        // marker is stored as it is, as Kafka does.
        var settings = _options;
        if (settings.Compression is { } codec && RecordCompression.CodecOf(batch) != codec && !new RecordBatchHeader(batch).IsControl)
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
                    return check.Status == AppendStatus.Duplicate ? check with { LogStartOffset = _logStartOffset } : check;
                }
            }

            var baseOffset = _logEndOffset;
            var header = new MutableRecordBatchHeader(batch);
            header.BaseOffset = baseOffset;
            header.PartitionLeaderEpoch = leaderEpoch;
            RecordEpochStart(leaderEpoch, baseOffset);
            var next = baseOffset + new RecordBatchHeader(batch).LastOffsetDelta + 1;
            var active = _segments[^1];
            try
            {
                var options = _options;
                if (active.Size > 0 && (active.Size + batch.Length > options.SegmentBytes
                    || _time.GetUtcNow() - active.Created >= options.MaxSegmentAge - _rollJitter
                    || active.IndexFull(options.MaxIndexBytes)))
                {
                    active.OnRolled();
                    SyncIndexesLater(active);
                    active = LogSegment.Create(Directory, baseOffset, options.IndexIntervalBytes, _runtime, options.DirectIo);
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
            if (tracked && _producers.Update(batch) is { IsAbort: true } aborted)
            {
                // Kafka's updateTxnIndex: the aborted transaction, in the segment of its marker.
                _hasTxnIndexes = true;
                if (active.AddAborted(aborted))
                {
                    _directoryDirty = true; // the new .txnindex file's entry is synced by the next flush
                }
            }

            Volatile.Write(ref _logEndOffset, next);
            if (_options.SyncBeforeAck)
            {
                RequestFlush(linger: !durabilityWanted);
            }
            else
            {
                Volatile.Write(ref _highWatermark, next);
                _producers.HighWatermarkMoved(next);
                OnHighWatermarkAdvanced?.Invoke();
                FlushByKafkaSettings(next - baseOffset);
            }

            // A LogAppendTime batch carries the broker's time as its max timestamp.
            var stored = new RecordBatchHeader(batch);
            var logAppendTime = stored.TimestampType == TimestampType.LogAppendTime ? stored.MaxTimestamp : -1;
            return new AppendResult(AppendStatus.Appended, baseOffset) { LastOffset = next - 1, LogAppendTime = logAppendTime, LogStartOffset = _logStartOffset };
        }
    }

    // Disk errors (issue 4). A failed append leaves the log as it was before it: the bytes a
    // partial write left past the segment's size are cut, the log end and producer state don't
    // move. The log keeps serving reads, and every append tries the disk again, so the partition
    // recovers by itself once space returns.
    private IOException? _storageError;

    /// <summary>The error of the last append while appends fail (a full disk, a failing device); null once one succeeds.</summary>
    public IOException? StorageError => Volatile.Read(ref _storageError);

    /// <summary>
    /// Called, under the append lock, with the log, when appends start failing (with the error)
    /// and when they work again (with null). One delegate may serve every log.
    /// </summary>
    public Action<PartitionLog, IOException?>? OnStorageErrorChanged { get; set; }

    private IOException AppendFailed(LogSegment active, Exception e)
    {
        try
        {
            // A short write on a full disk leaves part of the batch in the file, beyond Size where
            // no reader looks; the next append would follow it, so it goes now.
            using var file = active.LeaseHandle();
            RandomAccess.SetLength(file.Handle, active.Size);
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
            OnStorageErrorChanged?.Invoke(this, error);
        }

        return error;
    }

    private void AppendSucceeded()
    {
        if (Volatile.Read(ref _storageError) is not null && Interlocked.Exchange(ref _storageError, null) is not null)
        {
            OnStorageErrorChanged?.Invoke(this, null);
        }
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
                var batchHeader = new RecordBatchHeader(header);
                if (batchHeader.LastOffset >= offset)
                {
                    return ReadFrom(segment, position, size, maxBytes, wholeFirstBatchUpTo, maxOffset, rented);
                }

                position += batchHeader.TotalSize;
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
            Span<byte> headerBytes = stackalloc byte[RecordBatch.LogOverhead];
            segment.Read(headerBytes, position);
            var header = new RecordBatchHeader(headerBytes);
            var first = header.TotalSize;
            if (header.BaseOffset >= maxOffset || position + first > size)
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
            var header = new RecordBatchHeader(buffer.AsSpan(end));
            var batchSize = header.TotalSize;
            if (end + batchSize > read || header.BaseOffset >= maxOffset)
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
                var batchHeader = new RecordBatchHeader(header);
                var baseOffset = batchHeader.BaseOffset;
                if (baseOffset >= highWatermark)
                {
                    return null;
                }

                var lastOffset = batchHeader.LastOffset;
                var baseTimestamp = batchHeader.BaseTimestamp;
                var maxTimestamp = batchHeader.MaxTimestamp;
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
                var batchHeader = new RecordBatchHeader(header);
                if (batchHeader.BaseOffset >= highWatermark)
                {
                    return;
                }

                if (!visit(batchHeader.BaseOffset, batchHeader.LastOffset, batchHeader.BaseTimestamp, batchHeader.MaxTimestamp))
                {
                    return;
                }

                position += batchHeader.TotalSize;
            }
        }
    }

    /// <summary>Each segment's base offset, size and largest timestamp, oldest first; the last is the active one.</summary>
    public IReadOnlyList<SegmentInfo> Segments() =>
        _segments.Select(s => new SegmentInfo(s.BaseOffset, s.Size, s.MaxTimestamp)).ToList();

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

    /// <summary>The idempotent and transactional producers this partition knows (DescribeProducers).</summary>
    public IReadOnlyList<ActiveProducer> ActiveProducers()
    {
        lock (_appendLock)
        {
            return _producers.Snapshot();
        }
    }

    /// <summary>
    /// Kafka's <c>collectAbortedTransactions</c>: from the segment holding <paramref name="fetchOffset"/>
    /// on, the transaction index entries whose ABORT marker is at or after it and whose transaction
    /// starts below <paramref name="upperBoundOffset"/>, until an entry's last stable offset shows
    /// no later segment can add one.
    /// </summary>
    public IReadOnlyList<AbortedTransaction> AbortedTransactions(long fetchOffset, long upperBoundOffset)
    {
        if (!_hasTxnIndexes || upperBoundOffset <= fetchOffset)
        {
            return [];
        }

        // A transaction the fetched records belong to may end in any later segment: they are all
        // searched until an entry's last stable offset shows none after it can start below the bound.
        var segments = _segments;
        List<AbortedTransaction>? found = null;
        for (var i = Math.Max(0, SegmentFor(segments, fetchOffset)); i < segments.Length; i++)
        {
            if (segments[i].TxnIndex is { } index && index.Collect(fetchOffset, upperBoundOffset, ref found))
            {
                break;
            }
        }

        return found ?? (IReadOnlyList<AbortedTransaction>)[];
    }

    /// <summary>
    /// True once <see cref="Dispose"/> synced everything a clean start relies on; after
    /// <see cref="CloseWithoutSync"/>, once it wrote all of it (durable with the file system's sync).
    /// </summary>
    public bool ClosedCleanly { get; private set; }

    /// <summary>
    /// Writes the producer snapshot at the log end unless the one on disk is it already, removes the
    /// one it replaces, and (with <paramref name="sync"/>) syncs the file and then the directory once
    /// for both (called under the append lock, after the data is written, so the snapshot never names
    /// an offset past the data).
    /// </summary>
    private void WriteProducerSnapshot(bool sync)
    {
        var end = LogEndOffset;
        if (_snapshotAt == end)
        {
            return;
        }

        var path = System.IO.Path.Combine(Directory, ProducerStateTable.SnapshotFileName(end));
        _runtime.Files.BeforeWrite(path);
        _producers.WriteSnapshot(path, sync);
        if (_snapshotAt >= 0)
        {
            File.Delete(System.IO.Path.Combine(Directory, ProducerStateTable.SnapshotFileName(_snapshotAt)));
        }

        _snapshotAt = end;
        if (sync)
        {
            DirectorySync.Sync(Directory, _runtime.Files);
        }
    }

    /// <summary>Flushes, then closes every segment file.</summary>
    public void Dispose() => Close(syncEach: true);

    /// <summary>
    /// Closes the log as <see cref="Dispose"/> does, writing what a clean start relies on (the
    /// segment cut to its batches, the index files, the producer snapshot, a new log's leader-epoch
    /// checkpoint) but fsyncing none of it: <see cref="LocalLogManager"/> at a clean stop syncs
    /// each file system once afterwards (<see cref="FileSystemSync"/>), and only then is the log
    /// closed cleanly in the sense of the clean-shutdown marker (<see cref="MarkSyncedByFileSystem"/>).
    /// Until then nothing here claims durability: the recovery point and high watermark stay where
    /// the last fsync put them, and a crash before the marker means a full recovery.
    /// </summary>
    internal void CloseWithoutSync() => Close(syncEach: false);

    /// <summary>
    /// After <see cref="CloseWithoutSync"/> and a successful sync of the log's file system: the whole
    /// log is on disk, so its recovery point (written to the checkpoint next) is its end.
    /// </summary>
    internal void MarkSyncedByFileSystem() => MarkRecoveryPoint(LogEndOffset);

    private void Close(bool syncEach)
    {
        lock (_durabilityWaiters)
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
                // can trust them instead of reading the log through. Only what changed since it
                // was last synced costs an fsync: a log without appends since a clean open keeps
                // its snapshot, and its directory needs no sync. Direct writes are on the device
                // when they return (none is in flight under the append lock), so at a stop the
                // file system's sync covers them with the page cache's.
                _segments[^1].TrimPadding();
                if (syncEach)
                {
                    Flush();
                }
                else
                {
                    _leaderEpochs.WriteDeferred(sync: false);
                }

                foreach (var s in _segments)
                {
                    s.FlushIndexes(sync: syncEach);
                }

                WriteProducerSnapshot(sync: syncEach);
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

        if (_ownsRuntime)
        {
            _runtime.Dispose();
        }
    }
}
