using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>
/// A segment's two sparse indexes, as Kafka keeps them: the <c>.index</c> (8-byte entries: offset
/// relative to the segment's base, file position) and the <c>.timeindex</c> (12-byte entries:
/// timestamp, relative offset). Both are kept in memory for lookups; the files only let a clean
/// start skip reading the log, and a crash rebuilds them from the batches.
/// </summary>
/// <remarks>
/// As in Kafka, an offset index entry names the last offset of the batch at its position, and is
/// added once more than <c>index.interval.bytes</c> were appended since the previous one; a time
/// index entry records the largest timestamp so far and the last offset of the batch that holds it,
/// added with each offset entry when the timestamp grew, and once more when the segment rolls.
/// Entries are added by the one appending thread; lookups run concurrently under a lock. The files
/// are the runtime's <see cref="FileCache"/>'s: open while written, closed when cold.
/// </remarks>
internal sealed class SegmentIndexes : IDisposable
{
    private const int IndexEntrySize = 8;
    private const int TimeIndexEntrySize = 12;

    // Also the lock of lookups against the appender's additions (a Lock of its own would be 40 B more per segment).
    private readonly List<(long Offset, long Position)> _index = [];
    private readonly List<(long Timestamp, long Offset)> _timeIndex = [];
    private readonly long _baseOffset;
    private readonly int _interval;
    private readonly FileCache _cache;
    private CachedFile? _indexFile;
    private CachedFile? _timeIndexFile;
    private long _bytesSinceIndex;
    private bool _filesBroken;

    // Written since the last fsync (or opened other than exactly as loaded): the next Flush syncs.
    private volatile bool _unsynced;

    public SegmentIndexes(string logPath, long baseOffset, int interval, FileCache cache)
    {
        _cache = cache;
        IndexPath = IndexPathOf(logPath);
        TimeIndexPath = Path.ChangeExtension(logPath, ".timeindex");
        _baseOffset = baseOffset;
        _interval = interval;
    }

    /// <summary>The <c>.index</c> file's path.</summary>
    public string IndexPath { get; }

    /// <summary>The <c>.timeindex</c> file's path.</summary>
    public string TimeIndexPath { get; }

    /// <summary>
    /// segment.index.bytes: whether the offset index (8-byte entries) or the time index (12-byte
    /// entries) holds as many entries as <paramref name="maxIndexBytes"/> bytes fit, as Kafka's
    /// <c>isFull</c>. Read by the appender, the only writer.
    /// </summary>
    public bool IsFull(int maxIndexBytes) =>
        _index.Count >= maxIndexBytes / IndexEntrySize || _timeIndex.Count >= maxIndexBytes / TimeIndexEntrySize;

    /// <summary>The position the last offset index entry names (0 without one): the batches after it are not indexed.</summary>
    public long LastIndexedPosition => _index.Count > 0 ? _index[^1].Position : 0;

    /// <summary>The last offset of the batch the last offset index entry names, or -1 without one.</summary>
    public long LastIndexedOffset => _index.Count > 0 ? _index[^1].Offset : -1;

    /// <summary>Where the batch the last offset index entry names starts its offsets: after the entry before, or the segment's base.</summary>
    public long LastIndexedFrom => _index.Count > 1 ? _index[^2].Offset + 1 : _baseOffset;

    /// <summary>The last time index entry, or null.</summary>
    public (long Timestamp, long Offset)? LastTimeEntry => _timeIndex.Count > 0 ? _timeIndex[^1] : null;

    private static string IndexPathOf(string logPath) => Path.ChangeExtension(logPath, ".index");

    /// <summary>
    /// The offset after the last batch the <c>.index</c> file beside <paramref name="logPath"/>
    /// names (its entries hold a batch's last offset), or -1 without one. Read before recovery
    /// rewrites the file: it proves offsets up to there were handed out, whatever is left of the
    /// segment's bytes.
    /// </summary>
    public static long IndexedEnd(string logPath, long baseOffset)
    {
        var indexPath = IndexPathOf(logPath);
        if (!File.Exists(indexPath))
        {
            return -1;
        }

        // Only entries that pass the checks a clean load makes count: ascending, inside the file.
        var index = File.ReadAllBytes(indexPath);
        var length = new FileInfo(logPath).Length;
        var end = -1L;
        var lastPosition = -1L;
        for (var i = 0; i + IndexEntrySize <= index.Length; i += IndexEntrySize)
        {
            var relative = BinaryPrimitives.ReadInt32BigEndian(index.AsSpan(i));
            var position = BinaryPrimitives.ReadUInt32BigEndian(index.AsSpan(i + 4));
            // An entry is made only after index.interval.bytes, so none sits at position 0: zeros
            // are Kafka's pre-allocation, where the entries end.
            if (relative < 0 || position == 0 || position >= length || position <= lastPosition || baseOffset + relative < end)
            {
                break;
            }

            end = baseOffset + relative + 1;
            lastPosition = position;
        }

        return end;
    }

    /// <summary>
    /// Loads both files of a segment of <paramref name="length"/> bytes; false when one is missing
    /// (for a non-empty segment) or an entry fails the checks (not ascending, past the end).
    /// </summary>
    public bool TryLoad(long length)
    {
        if (!File.Exists(IndexPath) || !File.Exists(TimeIndexPath))
        {
            return length == 0;
        }

        var index = File.ReadAllBytes(IndexPath);
        for (var i = 0; i + IndexEntrySize <= index.Length; i += IndexEntrySize)
        {
            var relative = BinaryPrimitives.ReadInt32BigEndian(index.AsSpan(i));
            var position = BinaryPrimitives.ReadUInt32BigEndian(index.AsSpan(i + 4));
            if (relative == 0 && position == 0 && i > 0)
            {
                break; // Kafka pre-allocates index files with zeros: the entries end here.
            }

            if (position >= length || (_index.Count > 0 && (_baseOffset + relative <= _index[^1].Offset || position <= _index[^1].Position)))
            {
                return false;
            }

            _index.Add((_baseOffset + relative, position));
        }

        var timeIndex = File.ReadAllBytes(TimeIndexPath);
        for (var i = 0; i + TimeIndexEntrySize <= timeIndex.Length; i += TimeIndexEntrySize)
        {
            var timestamp = BinaryPrimitives.ReadInt64BigEndian(timeIndex.AsSpan(i));
            var relative = BinaryPrimitives.ReadInt32BigEndian(timeIndex.AsSpan(i + 8));
            if (timestamp == 0 && relative == 0 && i > 0)
            {
                break;
            }

            if (_timeIndex.Count > 0 && timestamp < _timeIndex[^1].Timestamp)
            {
                return false;
            }

            _timeIndex.Add((timestamp, _baseOffset + relative));
        }

        return true;
    }

    /// <summary>Opens both files: rewritten whole from memory (<paramref name="truncate"/>), or kept as loaded.</summary>
    public void OpenFiles(bool truncate)
    {
        var mode = truncate ? FileMode.Create : FileMode.OpenOrCreate;
        var index = File.OpenHandle(IndexPath, mode, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        SafeFileHandle? time = null;
        try
        {
            time = File.OpenHandle(TimeIndexPath, mode, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            if (!truncate)
            {
                // Drop any zero-filled tail a pre-allocating writer left.
                _unsynced |= SetLength(index, (long)_index.Count * IndexEntrySize) | SetLength(time, (long)_timeIndex.Count * TimeIndexEntrySize);
            }
            else
            {
                WriteFiles(index, time);
            }
        }
        catch
        {
            index.Dispose();
            time?.Dispose();
            throw;
        }

        // From here on the cache closes them when cold, and reopens them for the next write.
        _indexFile = _cache.Add(IndexPath, index);
        _timeIndexFile = _cache.Add(TimeIndexPath, time);
    }

    /// <summary>The file at <paramref name="path"/> was renamed to <paramref name="renamed"/> (a retired segment).</summary>
    public void Moved(string path, string renamed)
    {
        if (path == IndexPath)
        {
            _indexFile?.Renamed(renamed);
        }
        else if (path == TimeIndexPath)
        {
            _timeIndexFile?.Renamed(renamed);
        }
    }

    /// <summary>
    /// A batch of <paramref name="length"/> bytes was appended at <paramref name="position"/>, ending
    /// at <paramref name="lastOffset"/>; the segment's largest timestamp is now
    /// <paramref name="maxTimestamp"/>, first seen in the batch ending at <paramref name="offsetOfMaxTimestamp"/>.
    /// Adds the entries due, in memory, and returns whether it did.
    /// </summary>
    public (bool Indexed, bool Timed) Track(long lastOffset, long position, int length, long maxTimestamp, long offsetOfMaxTimestamp)
    {
        bool indexed = false, timed = false;
        if (_bytesSinceIndex > _interval)
        {
            lock (_index)
            {
                _index.Add((lastOffset, position));
                if (_timeIndex.Count == 0 || maxTimestamp > _timeIndex[^1].Timestamp)
                {
                    _timeIndex.Add((maxTimestamp, offsetOfMaxTimestamp));
                    timed = true;
                }
            }

            indexed = true;
            _bytesSinceIndex = 0;
        }

        _bytesSinceIndex += length;
        return (indexed, timed);
    }

    /// <summary>Writes the entries <see cref="Track"/> just added to the files (the caller serializes appends).</summary>
    public void WriteAdded(bool timed)
    {
        if (_filesBroken)
        {
            return;
        }

        try
        {
            Span<byte> entry = stackalloc byte[IndexEntrySize];
            (long Offset, long Position) last;
            (long Timestamp, long Offset) time;
            int count, timeCount;
            lock (_index)
            {
                last = _index[^1];
                count = _index.Count;
                time = _timeIndex.Count > 0 ? _timeIndex[^1] : default;
                timeCount = _timeIndex.Count;
            }

            BinaryPrimitives.WriteInt32BigEndian(entry, (int)(last.Offset - _baseOffset));
            BinaryPrimitives.WriteUInt32BigEndian(entry[4..], (uint)last.Position);
            _unsynced = true;
            using (var file = _indexFile!.Lease())
            {
                RandomAccess.Write(file.Handle, entry, (long)(count - 1) * IndexEntrySize);
            }

            if (timed)
            {
                WriteTimeEntry(time, timeCount);
            }
        }
        catch (IOException)
        {
            // The batch is in; the index files are only a start-up shortcut. They are written
            // whole at the clean close, or rebuilt from the log after a crash.
            _filesBroken = true;
        }
    }

    /// <summary>
    /// The segment stops being the active one: the time index gets a last entry for its largest
    /// timestamp, so a clean start reads a closed segment's timestamps from the index alone.
    /// </summary>
    public void AddFinalTimeEntry(long maxTimestamp, long offsetOfMaxTimestamp)
    {
        (long, long) entry;
        int count;
        lock (_index)
        {
            if (maxTimestamp < 0 || (_timeIndex.Count > 0 && maxTimestamp <= _timeIndex[^1].Timestamp))
            {
                return;
            }

            _timeIndex.Add((maxTimestamp, offsetOfMaxTimestamp));
            entry = _timeIndex[^1];
            count = _timeIndex.Count;
        }

        try
        {
            WriteTimeEntry(entry, count);
        }
        catch (IOException)
        {
            // As for an append: the entry is in memory, and the files are written whole at the close.
            _filesBroken = true;
        }
    }

    /// <summary>
    /// fsync of both files (a clean close; a crash rebuilds them from the log), rewritten first when
    /// a write to them failed; nothing when they were not written since the last one. Without
    /// <paramref name="sync"/> (a clean stop, which syncs the whole file system after), only the rewrite.
    /// </summary>
    public void Flush(bool sync = true)
    {
        if (!_unsynced && !_filesBroken)
        {
            return;
        }

        if (!sync)
        {
            RewriteIfBroken();
            return;
        }

        _unsynced = false;
        try
        {
            RewriteIfBroken();
            SyncFiles();
        }
        catch
        {
            _unsynced = true;
            throw;
        }
    }

    private void RewriteIfBroken()
    {
        if (!_filesBroken)
        {
            return;
        }

        using var index = _indexFile!.Lease();
        using var time = _timeIndexFile!.Lease();
        lock (_index)
        {
            WriteFiles(index.Handle, time.Handle);
        }

        _filesBroken = false;
    }

    private void SyncFiles()
    {
        // An fsync through a reopened handle syncs what was written through the closed one.
        using (var index = _indexFile!.Lease())
        {
            RandomAccess.FlushToDisk(index.Handle);
        }

        using (var time = _timeIndexFile!.Lease())
        {
            RandomAccess.FlushToDisk(time.Handle);
        }
    }

    /// <summary>A file position at or before the batch holding <paramref name="offset"/>.</summary>
    public long LookupPosition(long offset)
    {
        lock (_index)
        {
            // The largest entry whose batch ends before the offset: the batch holding it lies after.
            int lo = 0, hi = _index.Count - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_index[mid].Offset < offset)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            return found < 0 ? 0 : _index[found].Position;
        }
    }

    /// <summary>
    /// The offset after the last batch whose timestamps all lie below <paramref name="timestamp"/>
    /// by the time index (the entry before the first one at or above it), or -1 when none does.
    /// </summary>
    public long OffsetAfterTimestampsBelow(long timestamp)
    {
        lock (_index)
        {
            int lo = 0, hi = _timeIndex.Count - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_timeIndex[mid].Timestamp < timestamp)
                {
                    found = mid;
                    lo = mid + 1;
                }
                else
                {
                    hi = mid - 1;
                }
            }

            // Every batch up to that entry's offset has timestamps below the target.
            return found < 0 ? -1 : _timeIndex[found].Offset + 1;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _indexFile?.Dispose();
        _timeIndexFile?.Dispose();
    }

    private void WriteTimeEntry((long Timestamp, long Offset) time, int count)
    {
        Span<byte> entry = stackalloc byte[TimeIndexEntrySize];
        BinaryPrimitives.WriteInt64BigEndian(entry, time.Timestamp);
        BinaryPrimitives.WriteInt32BigEndian(entry[8..], (int)(time.Offset - _baseOffset));
        _unsynced = true;
        using var file = _timeIndexFile!.Lease();
        RandomAccess.Write(file.Handle, entry, (long)(count - 1) * TimeIndexEntrySize);
    }

    /// <summary>Sets the file's length; true when that changed it.</summary>
    private static bool SetLength(SafeFileHandle file, long length)
    {
        if (RandomAccess.GetLength(file) == length)
        {
            return false;
        }

        RandomAccess.SetLength(file, length);
        return true;
    }

    private void WriteFiles(SafeFileHandle indexFile, SafeFileHandle timeIndexFile)
    {
        _unsynced = true;
        var index = new byte[_index.Count * IndexEntrySize];
        for (var i = 0; i < _index.Count; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(index.AsSpan(i * IndexEntrySize), (int)(_index[i].Offset - _baseOffset));
            BinaryPrimitives.WriteUInt32BigEndian(index.AsSpan((i * IndexEntrySize) + 4), (uint)_index[i].Position);
        }

        var time = new byte[_timeIndex.Count * TimeIndexEntrySize];
        for (var i = 0; i < _timeIndex.Count; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(time.AsSpan(i * TimeIndexEntrySize), _timeIndex[i].Timestamp);
            BinaryPrimitives.WriteInt32BigEndian(time.AsSpan((i * TimeIndexEntrySize) + 8), (int)(_timeIndex[i].Offset - _baseOffset));
        }

        RandomAccess.SetLength(indexFile, index.Length);
        RandomAccess.Write(indexFile, index, 0);
        RandomAccess.SetLength(timeIndexFile, time.Length);
        RandomAccess.Write(timeIndexFile, time, 0);
    }
}
