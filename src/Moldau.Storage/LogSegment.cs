using Microsoft.Win32.SafeHandles;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// One segment, laid out as Kafka lays it out: <c>&lt;20-digit base offset&gt;.log</c> holding
/// RecordBatch v2 bytes back to back, with its offset and time indexes beside it
/// (<see cref="SegmentIndexes"/>). This file is the segment's format: appending whole batches,
/// reading bytes back, flushing, rolling and retiring.
/// </summary>
/// <remarks>
/// The other pieces: opening an existing segment, with the CRC walk and the tail cut, is
/// <see cref="SegmentRecovery"/>; direct appends are <see cref="DirectSegmentWriter"/>; direct
/// reads go through the read-ahead chunks (<see cref="SegmentReadAhead"/>) and each thread's
/// <see cref="ReadWindow"/>, all of the <see cref="StorageRuntime"/> the segment belongs to.
/// The segment's files (the buffered and the direct handle of the log, the index files) are the
/// runtime's <see cref="FileCache"/>'s: opened on first use, leased for each use, closed when cold.
/// </remarks>
internal sealed class LogSegment : IDisposable
{
    /// <summary>The suffix a retired segment's file gets until it is removed.</summary>
    public const string DeletedSuffix = ".deleted";

    private readonly StorageRuntime _runtime;
    private readonly CachedFile _log;
    private List<string>? _renamed; // made when retired
    private long _size;
    private long _offsetOfMaxTimestamp = -1;
    private volatile bool _deleted;
    private volatile bool _dirty;
    private bool _unsetTimestamps;
    private volatile bool _directIo;
    private CachedFile? _direct;
    private DirectSegmentWriter? _writer;
    private SegmentReadAhead? _ahead;
    private int _disposed;

    /// <summary>A segment over an open file; <see cref="Create"/> and <see cref="SegmentRecovery"/> make them.</summary>
    internal LogSegment(string path, long baseOffset, SafeFileHandle handle, int indexInterval, StorageRuntime runtime)
    {
        Path = path;
        BaseOffset = baseOffset;
        _log = runtime.OpenFiles.Add(path, handle);
        NextOffset = baseOffset;
        _runtime = runtime;
        Indexes = new SegmentIndexes(path, baseOffset, indexInterval, runtime.OpenFiles);

        // An opened file may hold writes that reached only the page cache before a crash: the
        // first flush syncs it whatever was appended since.
        _dirty = true;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The offset in the file name.</summary>
    public long BaseOffset { get; }

    /// <summary>
    /// The file's (buffered) handle for one use, reopened if the runtime's <see cref="FileCache"/>
    /// closed it while cold; dispose the lease after the use.
    /// </summary>
    public FileLease LeaseHandle() => _log.Lease();

    /// <summary>The runtime whose buffers, threads and file layer the segment uses.</summary>
    public StorageRuntime Runtime => _runtime;

    /// <summary>The offset and time indexes.</summary>
    internal SegmentIndexes Indexes { get; }

    // The .txnindex: null while the segment has no ABORT marker (and no file from before).
    private TransactionIndex? _txnIndex;

    /// <summary>The transaction index, or null while the segment holds no ABORT marker.</summary>
    internal TransactionIndex? TxnIndex => Volatile.Read(ref _txnIndex);

    /// <summary>Takes the <c>.txnindex</c> file beside the segment when there is one (opening a segment).</summary>
    internal void FindTxnIndex()
    {
        if (File.Exists(TransactionIndex.PathOf(Path)))
        {
            Volatile.Write(ref _txnIndex, new TransactionIndex(Path, _runtime, exists: true));
        }
    }

    /// <summary>Removes the <c>.txnindex</c> file beside the segment, if any (recovery rebuilds it).</summary>
    internal void DropTxnIndex()
    {
        Volatile.Read(ref _txnIndex)?.Dispose();
        Volatile.Write(ref _txnIndex, null);
        File.Delete(TransactionIndex.PathOf(Path));
    }

    /// <summary>
    /// A transaction ended with an ABORT marker in this segment: its entry goes to the transaction
    /// index (the appending thread only). True when that created the index file.
    /// </summary>
    internal bool AddAborted(CompletedTxn txn) =>
        AddAborted(new AbortedTxnEntry(txn.ProducerId, txn.FirstOffset, txn.LastOffset, txn.LastStableOffset));

    /// <summary>Adds an entry to the transaction index, made with its file when there is none; true when the file was created.</summary>
    internal bool AddAborted(AbortedTxnEntry entry)
    {
        var index = Volatile.Read(ref _txnIndex);
        if (index is null)
        {
            index = new TransactionIndex(Path, _runtime, exists: false);
            Volatile.Write(ref _txnIndex, index);
        }

        return index.Append(entry);
    }

    /// <summary>Bytes of whole batches; readers never look past it.</summary>
    public long Size => Volatile.Read(ref _size);

    /// <summary>The largest max timestamp of the segment's batches (-1 when empty), for time retention.</summary>
    public long MaxTimestamp { get; private set; } = -1;

    /// <summary>The max timestamp of the first batch (or -1): the start of <c>segment.ms</c>, as in Kafka.</summary>
    public long FirstBatchTimestamp { get; internal set; } = -1;

    /// <summary>When the segment started, for <c>segment.ms</c>: its first batch's timestamp, or when it was made.</summary>
    public DateTimeOffset Created { get; set; }

    /// <summary>The offset after the last batch, or <see cref="BaseOffset"/> when empty.</summary>
    public long NextOffset { get; private set; }

    /// <summary>
    /// segment.index.bytes: whether the offset index (8-byte entries) or the time index (12-byte
    /// entries) holds as many entries as <paramref name="maxIndexBytes"/> bytes fit, as Kafka's
    /// <c>isFull</c>; the segment then rolls. Read by the appender, the only writer.
    /// </summary>
    public bool IndexFull(int maxIndexBytes) => Indexes.IsFull(maxIndexBytes);

    /// <summary>Some batch leaves its max timestamp unset (below its base timestamp): the time index can't rule any out.</summary>
    public bool HasUnsetTimestamps => Volatile.Read(ref _unsetTimestamps);

    /// <summary>The segment file name for <paramref name="baseOffset"/>.</summary>
    public static string FileName(long baseOffset) => baseOffset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".log";

    /// <summary>Creates an empty segment and its empty index files.</summary>
    public static LogSegment Create(string directory, long baseOffset, int indexInterval, StorageRuntime runtime, bool directIo = false)
    {
        var path = System.IO.Path.Combine(directory, FileName(baseOffset));
        runtime.Files.BeforeWrite(path);
        var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        runtime.Files.Created(path);
        var segment = new LogSegment(path, baseOffset, handle, indexInterval, runtime);
        segment.Opened(0, rewriteIndexFiles: true, directIo);
        return segment;
    }

    /// <summary>
    /// The last step of opening: <paramref name="size"/> bytes of whole batches, the index files
    /// rewritten from memory (or kept as loaded), and data read and written with direct I/O when
    /// asked for (the direct handle is opened by the first direct read or write).
    /// </summary>
    internal void Opened(long size, bool rewriteIndexFiles, bool directIo)
    {
        _size = size;
        Indexes.OpenFiles(truncate: rewriteIndexFiles);
        _directIo = directIo;
    }

    /// <summary>Whether the segment's direct handle is open now (false while not yet used, or closed when cold).</summary>
    internal bool DirectHandleOpen => Volatile.Read(ref _direct)?.IsOpen ?? false;

    /// <summary>Whether the segment reads and writes with direct I/O (known once it first did; false where the file system can't).</summary>
    internal bool UsesDirectIo => Volatile.Read(ref _direct) is not null;

    /// <summary>
    /// The direct handle's file, opened by the first use; null when the segment does without (not
    /// asked for, or the file system has no <c>O_DIRECT</c>: then the page cache serves it).
    /// </summary>
    private CachedFile? Direct()
    {
        var file = Volatile.Read(ref _direct);
        return file is not null || !_directIo ? file : OpenDirect();
    }

    private CachedFile? OpenDirect()
    {
        var path = _log.Path;
        var handle = DirectIo.TryOpen(path, out var unsupported);
        if (handle is null)
        {
            if (unsupported)
            {
                _directIo = false;
                return Volatile.Read(ref _direct);
            }

            // Out of descriptors, say: an error for this use, not a switch to the page cache.
            handle = DirectIo.OpenExisting(path);
        }

        var file = _runtime.OpenFiles.Add(path, handle, direct: true, onClosed: DirectClosed);
        if (Interlocked.CompareExchange(ref _direct, file, null) is { } other)
        {
            file.Dispose();
            return other;
        }

        if (_log.Path != path)
        {
            file.Renamed(_log.Path); // retired while this opened it
        }

        if (Volatile.Read(ref _disposed) != 0)
        {
            file.Dispose(); // closed while this opened it: the lease fails
        }

        return file;
    }

    // The cache closed the direct handle, with no lease out: a cold segment keeps no tail block.
    private void DirectClosed() => Volatile.Read(ref _writer)?.DropTail();

    /// <summary>Appends a whole batch at the end (the caller serializes appends).</summary>
    public void Append(ReadOnlySpan<byte> batch)
    {
        var position = _size;
        _runtime.Files.BeforeWrite(Path);
        if (Direct() is { } direct)
        {
            var writer = _writer;
            if (writer is null)
            {
                writer = new DirectSegmentWriter(Path, direct, _runtime.Buffers);
                Volatile.Write(ref _writer, writer);
            }

            writer.Write(batch, position);
        }
        else
        {
            using var file = _log.Lease();
            RandomAccess.Write(file.Handle, batch, position);
        }

        _dirty = true;
        var (indexed, timed) = Track(batch, position);
        Volatile.Write(ref _size, position + batch.Length);
        if (indexed)
        {
            Indexes.WriteAdded(timed);
        }
    }

    /// <summary>Updates the segment's state for a batch written (or found, when recovering) at <paramref name="position"/>.</summary>
    /// <returns>Whether an offset index entry, and a time index entry, were added.</returns>
    internal (bool Indexed, bool Timed) Track(ReadOnlySpan<byte> batch, long position)
    {
        var header = new RecordBatchHeader(batch);
        var last = header.LastOffset;
        var maxTimestamp = header.MaxTimestamp;

        // A compacted batch's delete horizon (KIP-534) sits in the base timestamp: not a record time.
        var baseTimestamp = header.HasDeleteHorizon ? long.MinValue : header.BaseTimestamp;
        if (maxTimestamp < baseTimestamp)
        {
            // Some clients (sarama 1.22) leave the max timestamp unset: only the records know it,
            // so the time index can't rule out any batch of this segment.
            _unsetTimestamps = true;
            maxTimestamp = baseTimestamp;
        }

        if (position == 0)
        {
            FirstBatchTimestamp = maxTimestamp;
        }

        NoteBatch(last, maxTimestamp);
        return Indexes.Track(last, position, batch.Length, MaxTimestamp, _offsetOfMaxTimestamp);
    }

    /// <summary>A batch ending at <paramref name="lastOffset"/> with <paramref name="maxTimestamp"/> is in the segment.</summary>
    internal void NoteBatch(long lastOffset, long maxTimestamp)
    {
        if (maxTimestamp > MaxTimestamp)
        {
            MaxTimestamp = maxTimestamp;
            _offsetOfMaxTimestamp = lastOffset;
        }

        NextOffset = lastOffset + 1;
    }

    /// <summary>The largest timestamp is the last time index entry's (loading a segment from its index files).</summary>
    internal void NoteLargestTimestamp(long timestamp, long offset)
    {
        MaxTimestamp = timestamp;
        _offsetOfMaxTimestamp = offset;
    }

    /// <summary>
    /// The segment stops being the active one: cut back to its batches, and its time index gets a
    /// last entry for its largest timestamp, so a clean start reads a closed segment's timestamps
    /// from the index alone.
    /// </summary>
    public void OnRolled()
    {
        TrimPadding();
        Indexes.AddFinalTimeEntry(MaxTimestamp, _offsetOfMaxTimestamp);
    }

    /// <summary>A file position at or before the batch holding <paramref name="offset"/>.</summary>
    public long LookupPosition(long offset) => Indexes.LookupPosition(offset);

    /// <summary>
    /// A file position at or before the first batch that may hold a timestamp at or after
    /// <paramref name="timestamp"/>, from the time index: the batch after the last entry below it.
    /// </summary>
    public long LookupTimestampPosition(long timestamp)
    {
        if (HasUnsetTimestamps)
        {
            return 0;
        }

        var offset = Indexes.OffsetAfterTimestampsBelow(timestamp);
        return offset < 0 ? 0 : Indexes.LookupPosition(offset);
    }

    /// <summary>
    /// Reads from <paramref name="position"/> into <paramref name="destination"/>; returns the bytes
    /// read. Callers read only below <see cref="Size"/>, where the bytes never change. With
    /// <paramref name="readAhead"/> (a consumer reading on), the chunk after the bytes read is
    /// fetched in the background, so the consumer's next read is served from memory.
    /// </summary>
    public int Read(Span<byte> destination, long position, bool readAhead = false)
    {
        var direct = Direct();
        if (direct is null)
        {
            using var file = _log.Lease();
            return RandomAccess.Read(file.Handle, destination, position);
        }

        // Only a consumer catching up reads this much at once; one at the end of the log does not.
        var ahead = _ahead;
        if (readAhead && destination.Length >= ReadWindow.Length && !_deleted)
        {
            if (ahead is null)
            {
                Interlocked.CompareExchange(ref _ahead, new SegmentReadAhead(this, direct, _runtime.ReadAhead), null);
                ahead = _ahead;
            }

            ahead.Start(position);
        }

        var done = ahead?.Copy(destination, position) ?? 0;
        if (done < destination.Length)
        {
            using var file = direct.Lease();
            done += _runtime.ReadWindows.Read(this, file.Handle, destination[done..], position + done);
        }

        return done;
    }

    /// <summary>
    /// Cuts the file back to <see cref="Size"/> when direct writes left zeros after the last block's
    /// data: a segment that stops being active, or closes, has exactly its batches in it, as in Kafka.
    /// </summary>
    public void TrimPadding()
    {
        // Only this segment's direct writes pad (opening cuts the file to its batches).
        if (_writer is not { } writer)
        {
            return;
        }

        writer.ReleaseReserved(Size);
        using var file = _direct!.Lease();
        if (RandomAccess.GetLength(file.Handle) > Size)
        {
            _runtime.Files.BeforeWrite(Path);
            RandomAccess.SetLength(file.Handle, Size);
            _dirty = true;
        }
    }

    /// <summary>fsync of the log file; nothing once the segment is retired (its data no longer counts).</summary>
    public void Flush()
    {
        if (_deleted || !_dirty)
        {
            return;
        }

        _dirty = false;
        try
        {
            // What the fsync covers: every write that returned before it starts, some perhaps not
            // yet published in Size (an append sets the dirty flag before publishing its size).
            // An fsync through a reopened handle syncs what was written through the closed one.
            // Through the direct handle when there is one: the one appends keep open.
            var files = _runtime.Files;
            using var file = Volatile.Read(ref _direct) is { } direct ? direct.Lease() : _log.Lease();
            var length = files.Observer is null ? 0 : RandomAccess.GetLength(file.Handle);
            files.BeforeWrite(Path);
            RandomAccess.FlushToDisk(file.Handle);
            files.Synced(Path, length);
        }
        catch (ObjectDisposedException) when (_deleted)
        {
        }
        catch
        {
            _dirty = true; // not synced: the next flush must try again
            throw;
        }
    }

    /// <summary>
    /// fsync of the index files (a clean close; a crash rebuilds them from the log); without
    /// <paramref name="sync"/>, only rewritten where a write to them failed (a clean stop syncs the file system after).
    /// </summary>
    public void FlushIndexes(bool sync = true)
    {
        Indexes.Flush(sync);
        TxnIndex?.Flush(sync);
    }

    /// <summary>Renames the files to <c>.deleted</c>; the log stays open for readers until <see cref="DisposeAndDelete"/>.</summary>
    public void MarkDeleted()
    {
        _deleted = true;
        foreach (var path in new[] { Path, Indexes.IndexPath, Indexes.TimeIndexPath })
        {
            try
            {
                File.Move(path, path + DeletedSuffix, overwrite: true);
                (_renamed ??= []).Add(path);
                if (path == Path)
                {
                    _log.Renamed(path + DeletedSuffix);
                    Volatile.Read(ref _direct)?.Renamed(path + DeletedSuffix);
                }

                Indexes.Moved(path, path + DeletedSuffix);
            }
            catch (IOException)
            {
                // Renaming is a courtesy for restarts; the segment is out of the log either way.
            }
        }

        TxnIndex?.MoveTo(TransactionIndex.PathOf(Path) + DeletedSuffix);
    }

    /// <summary>
    /// Closes the files and removes them. Once renamed, only the <c>.deleted</c> files go: the
    /// cleaner puts a segment's replacement at the original paths.
    /// </summary>
    public void DisposeAndDelete()
    {
        Dispose();
        foreach (var path in new[] { Path, Indexes.IndexPath, Indexes.TimeIndexPath })
        {
            File.Delete(_renamed?.Contains(path) == true ? path + DeletedSuffix : path);
        }

        TxnIndex?.DisposeAndDelete();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _ahead?.Close();
        if (Interlocked.Exchange(ref _disposed, 1) == 0)
        {
            Volatile.Read(ref _direct)?.Dispose();
        }

        _log.Dispose();
        Indexes.Dispose();
        TxnIndex?.Dispose();
    }
}
