using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// One segment, laid out as Kafka lays it out: <c>&lt;20-digit base offset&gt;.log</c> holding
/// RecordBatch v2 bytes back to back, a sparse <c>.index</c> (8-byte entries: offset relative to
/// the base, file position) and a <c>.timeindex</c> (12-byte entries: timestamp, relative offset).
/// Both indexes are also kept in memory; the files let a clean start skip reading the log.
/// </summary>
/// <remarks>
/// As in Kafka, an offset index entry names the last offset of the batch at its position, and is
/// added once more than <c>index.interval.bytes</c> were appended since the previous one; a time
/// index entry records the largest timestamp so far and the last offset of the batch that holds it,
/// added with each offset entry when the timestamp grew, and once more when the segment rolls.
/// </remarks>
internal sealed class LogSegment : IDisposable
{
    /// <summary>The suffix a retired segment's file gets until it is removed.</summary>
    public const string DeletedSuffix = ".deleted";

    private const int IndexEntrySize = 8;
    private const int TimeIndexEntrySize = 12;

    private readonly List<(long Offset, long Position)> _index = [];
    private readonly List<(long Timestamp, long Offset)> _timeIndex = [];
    private readonly Lock _indexLock = new();
    private readonly int _indexInterval;
    private SafeFileHandle? _indexFile;
    private SafeFileHandle? _timeIndexFile;
    private long _bytesSinceIndex;
    private long _size;
    private long _offsetOfMaxTimestamp = -1;
    private volatile bool _deleted;
    private readonly List<string> _renamed = [];
    private volatile bool _dirty;
    private bool _unsetTimestamps;
    private bool _indexFilesBroken;
    private SafeFileHandle? _direct;
    private byte[]? _tail;
    private long _preallocatedTo;
    private bool _cannotPreallocate;

    private LogSegment(string path, long baseOffset, SafeFileHandle handle, int indexInterval)
    {
        Path = path;
        BaseOffset = baseOffset;
        Handle = handle;
        _indexInterval = indexInterval;
        NextOffset = baseOffset;

        // An opened file may hold writes that reached only the page cache before a crash: the
        // first flush syncs it whatever was appended since.
        _dirty = true;
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The offset in the file name.</summary>
    public long BaseOffset { get; }

    /// <summary>The open file.</summary>
    public SafeFileHandle Handle { get; }

    /// <summary>Bytes of whole batches; readers never look past it.</summary>
    public long Size => Volatile.Read(ref _size);

    /// <summary>The largest max timestamp of the segment's batches (-1 when empty), for time retention.</summary>
    public long MaxTimestamp { get; private set; } = -1;

    /// <summary>The max timestamp of the first batch (or -1): the start of <c>segment.ms</c>, as in Kafka.</summary>
    public long FirstBatchTimestamp { get; private set; } = -1;

    /// <summary>When the segment started, for <c>segment.ms</c>: its first batch's timestamp, or when it was made.</summary>
    public DateTimeOffset Created { get; set; }

    /// <summary>The offset after the last batch, or <see cref="BaseOffset"/> when empty.</summary>
    public long NextOffset { get; private set; }

    /// <summary>
    /// segment.index.bytes: whether the offset index (8-byte entries) or the time index (12-byte
    /// entries) holds as many entries as <paramref name="maxIndexBytes"/> bytes fit, as Kafka's
    /// <c>isFull</c>; the segment then rolls. Read by the appender, the only writer.
    /// </summary>
    public bool IndexFull(int maxIndexBytes) =>
        _index.Count >= maxIndexBytes / IndexEntrySize || _timeIndex.Count >= maxIndexBytes / TimeIndexEntrySize;

    /// <summary>Some batch leaves its max timestamp unset (below its base timestamp): the time index can't rule any out.</summary>
    public bool HasUnsetTimestamps => Volatile.Read(ref _unsetTimestamps);

    /// <summary>The segment file name for <paramref name="baseOffset"/>.</summary>
    public static string FileName(long baseOffset) => BaseName(baseOffset) + ".log";

    private static string BaseName(long baseOffset) => baseOffset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture);

    private string IndexPath => System.IO.Path.ChangeExtension(Path, ".index");

    private string TimeIndexPath => System.IO.Path.ChangeExtension(Path, ".timeindex");

    /// <summary>Creates an empty segment and its empty index files.</summary>
    public static LogSegment Create(string directory, long baseOffset, int indexInterval, bool directIo = false)
    {
        var path = System.IO.Path.Combine(directory, FileName(baseOffset));
        FileLayer.BeforeWrite(path);
        var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        FileLayer.Created(path);
        var segment = new LogSegment(path, baseOffset, handle, indexInterval);
        segment.OpenIndexFiles(truncate: true);
        segment.OpenDirect(directIo);
        return segment;
    }

    private void OpenDirect(bool directIo)
    {
        if (directIo)
        {
            _direct = DirectIo.TryOpen(Path);
        }
    }

    /// <summary>
    /// Opens an existing segment and walks its batches, checking each one's length, magic and
    /// CRC, and rewrites its index files from what it finds. A torn or corrupt tail (a partial
    /// batch, a bad CRC) is cut off at the last whole batch.
    /// </summary>
    /// <returns>The segment, and the number of bytes truncated.</returns>
    public static (LogSegment Segment, long Truncated) Recover(string path, long baseOffset, int indexInterval, ProducerStateTable producers, bool directIo = false)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var segment = new LogSegment(path, baseOffset, handle, indexInterval);
        var length = RandomAccess.GetLength(handle);
        var position = 0L;
        var header = new byte[RecordBatch.HeaderSize];
        byte[] buffer = [];
        var next = baseOffset;
        while (position + RecordBatch.HeaderSize <= length)
        {
            RandomAccess.Read(handle, header, position);
            var size = RecordBatch.DeclaredSize(header);
            if (size < RecordBatch.HeaderSize || position + size > length || header[RecordBatch.MagicOffset] != 2 || !FollowsOn(header, next))
            {
                break;
            }

            if (buffer.Length < size)
            {
                buffer = new byte[Math.Max(size, 64 * 1024)];
            }

            var batch = buffer.AsSpan(0, (int)size);
            if (RandomAccess.Read(handle, batch, position) != size ||
                Crc32C.Compute(batch[RecordBatch.AttributesOffset..]) != BinaryPrimitives.ReadUInt32BigEndian(batch[RecordBatch.CrcOffset..]))
            {
                break;
            }

            if (ProducerStateTable.Tracks(batch))
            {
                producers.Update(batch);
            }

            segment.Track(batch, position);
            next = segment.NextOffset;
            position += size;
        }

        var truncated = length - position;
        if (truncated > 0)
        {
            // Zeros up to the end of the last block are the padding of a direct write, not a loss.
            if (length == DirectIo.AlignUp(position) && IsZero(handle, position, (int)truncated))
            {
                truncated = 0;
            }

            RandomAccess.SetLength(handle, position);
        }

        segment._size = position;
        segment.OpenIndexFiles(truncate: true);
        segment.OpenDirect(directIo);
        return (segment, truncated);
    }

    /// <summary>
    /// Opens a segment that was closed cleanly: its length is trusted and its indexes are loaded
    /// from their files, so only the batch headers after the last index entry are read. An index
    /// file that is missing or fails its checks is rebuilt by <see cref="Recover"/>.
    /// </summary>
    public static LogSegment Load(string path, long baseOffset, int indexInterval, bool directIo = false) =>
        Load(path, baseOffset, indexInterval, directIo, verifyTail: false).Segment;

    /// <summary>
    /// As <see cref="Load(string, long, int, bool)"/>; with <paramref name="verifyTail"/> the batches
    /// after the last index entry (at most about one index interval and one batch) are also checked
    /// against their CRC. When the batches don't add up (a header that is not a batch, a failed
    /// CRC) the segment is recovered and cut at the last whole batch, and <c>CorruptAt</c> is the
    /// position of the first bad byte; otherwise it is -1.
    /// </summary>
    public static (LogSegment Segment, long CorruptAt) Load(string path, long baseOffset, int indexInterval, bool directIo, bool verifyTail)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var segment = new LogSegment(path, baseOffset, handle, indexInterval);
        var length = RandomAccess.GetLength(handle);
        if (!segment.TryLoadIndexes(length) || (verifyTail && !segment.TailPassesCrc(length)))
        {
            handle.Dispose();
            var (recovered, cut) = Recover(path, baseOffset, indexInterval, new ProducerStateTable(), directIo);
            return (recovered, cut > 0 ? recovered.Size : -1);
        }

        segment._size = length;
        segment.OpenIndexFiles(truncate: false);
        segment.OpenDirect(directIo);
        return (segment, -1);
    }

    private bool TailPassesCrc(long length)
    {
        var position = _index.Count > 0 ? _index[^1].Position : 0;
        var buffer = new byte[64 * 1024];
        while (position + RecordBatch.HeaderSize <= length)
        {
            RandomAccess.Read(Handle, buffer.AsSpan(0, RecordBatch.HeaderSize), position);
            var size = RecordBatch.DeclaredSize(buffer);
            if (size < RecordBatch.HeaderSize || position + size > length)
            {
                return false;
            }

            if (buffer.Length < size)
            {
                buffer = new byte[size];
            }

            var batch = buffer.AsSpan(0, (int)size);
            if (RandomAccess.Read(Handle, batch, position) != size ||
                Crc32C.Compute(batch[RecordBatch.AttributesOffset..]) != BinaryPrimitives.ReadUInt32BigEndian(batch[RecordBatch.CrcOffset..]))
            {
                return false;
            }

            position += size;
        }

        return position == length;
    }

    /// <summary>
    /// The offset after the last batch the segment's <c>.index</c> file names (its entries hold a
    /// batch's last offset), or -1 without one. Read before recovery rewrites the file: it proves
    /// offsets up to there were handed out, whatever is left of the segment's bytes.
    /// </summary>
    public static long IndexedEnd(string logPath, long baseOffset)
    {
        var indexPath = System.IO.Path.ChangeExtension(logPath, ".index");
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

    private static bool IsZero(SafeFileHandle handle, long position, int length)
    {
        Span<byte> bytes = stackalloc byte[DirectIo.BlockSize];
        var read = RandomAccess.Read(handle, bytes[..length], position);
        return read == length && !bytes[..length].ContainsAnyExcept((byte)0);
    }

    private bool TryLoadIndexes(long length)
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

            if (position >= length || (_index.Count > 0 && (BaseOffset + relative <= _index[^1].Offset || position <= _index[^1].Position)))
            {
                return false;
            }

            _index.Add((BaseOffset + relative, position));
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

            _timeIndex.Add((timestamp, BaseOffset + relative));
        }

        // The batches after the last index entry: their headers give the log end and timestamps.
        if (_timeIndex.Count > 0)
        {
            MaxTimestamp = _timeIndex[^1].Timestamp;
            _offsetOfMaxTimestamp = _timeIndex[^1].Offset;
        }

        var header = new byte[RecordBatch.HeaderSize];
        var at = 0L;
        if (length > 0)
        {
            RandomAccess.Read(Handle, header, 0);
            FirstBatchTimestamp = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(35));
        }

        // The walk starts at the batch the last index entry names (it ends at that entry's offset),
        // so its offsets lie after the entry before; each later one follows the batch ahead of it.
        var next = BaseOffset;
        var indexedLast = -1L;
        if (_index.Count > 0)
        {
            at = _index[^1].Position;
            indexedLast = _index[^1].Offset;
            next = _index.Count > 1 ? _index[^2].Offset + 1 : BaseOffset;
        }

        while (at + RecordBatch.HeaderSize <= length)
        {
            if (RandomAccess.Read(Handle, header, at) != header.Length || header[RecordBatch.MagicOffset] != 2)
            {
                return false;
            }

            var size = RecordBatch.DeclaredSize(header);
            if (size < RecordBatch.HeaderSize || at + size > length || !FollowsOn(header, next))
            {
                return false;
            }

            var last = BinaryPrimitives.ReadInt64BigEndian(header) + BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(23));
            if (indexedLast >= 0 && last != indexedLast)
            {
                return false;
            }

            indexedLast = -1;
            next = last + 1;
            var maxTimestamp = BinaryPrimitives.ReadInt64BigEndian(header.AsSpan(35));
            if (maxTimestamp > MaxTimestamp)
            {
                MaxTimestamp = maxTimestamp;
                _offsetOfMaxTimestamp = last;
            }

            NextOffset = last + 1;
            at += size;
        }

        return at == length;
    }

    private void OpenIndexFiles(bool truncate)
    {
        var mode = truncate ? FileMode.Create : FileMode.OpenOrCreate;
        _indexFile = File.OpenHandle(IndexPath, mode, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        _timeIndexFile = File.OpenHandle(TimeIndexPath, mode, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        if (!truncate)
        {
            // Drop any zero-filled tail a pre-allocating writer left.
            RandomAccess.SetLength(_indexFile, (long)_index.Count * IndexEntrySize);
            RandomAccess.SetLength(_timeIndexFile, (long)_timeIndex.Count * TimeIndexEntrySize);
        }
        else
        {
            WriteIndexes();
        }
    }

    private void WriteIndexes()
    {
        var index = new byte[_index.Count * IndexEntrySize];
        for (var i = 0; i < _index.Count; i++)
        {
            BinaryPrimitives.WriteInt32BigEndian(index.AsSpan(i * IndexEntrySize), (int)(_index[i].Offset - BaseOffset));
            BinaryPrimitives.WriteUInt32BigEndian(index.AsSpan((i * IndexEntrySize) + 4), (uint)_index[i].Position);
        }

        var time = new byte[_timeIndex.Count * TimeIndexEntrySize];
        for (var i = 0; i < _timeIndex.Count; i++)
        {
            BinaryPrimitives.WriteInt64BigEndian(time.AsSpan(i * TimeIndexEntrySize), _timeIndex[i].Timestamp);
            BinaryPrimitives.WriteInt32BigEndian(time.AsSpan((i * TimeIndexEntrySize) + 8), (int)(_timeIndex[i].Offset - BaseOffset));
        }

        RandomAccess.SetLength(_indexFile!, index.Length);
        RandomAccess.Write(_indexFile!, index, 0);
        RandomAccess.SetLength(_timeIndexFile!, time.Length);
        RandomAccess.Write(_timeIndexFile!, time, 0);
    }

    /// <summary>Appends a whole batch at the end (the caller serializes appends).</summary>
    public void Append(ReadOnlySpan<byte> batch)
    {
        var position = _size;
        FileLayer.BeforeWrite(Path);
        if (_direct is { } direct)
        {
            WriteDirect(direct, batch, position);
        }
        else
        {
            RandomAccess.Write(Handle, batch, position);
        }

        _dirty = true;
        var (indexed, timed) = Track(batch, position);
        Volatile.Write(ref _size, position + batch.Length);
        if (indexed && !_indexFilesBroken)
        {
            try
            {
                WriteLastIndexEntries(timed);
            }
            catch (IOException)
            {
                // The batch is in; the index files are only a start-up shortcut. They are written
                // whole at the clean close, or rebuilt from the log after a crash.
                _indexFilesBroken = true;
            }
        }
    }

    /// <summary>
    /// Whether a batch's offsets (from its header: the base offset is not covered by the CRC) start
    /// at or after <paramref name="next"/>, the segment's base or the end of the batch ahead of it,
    /// and form a range that neither runs backwards nor overflows. A batch that fails is corrupt:
    /// recovery cuts there, as at a failed CRC (a negative base offset made the log end negative).
    /// </summary>
    private static bool FollowsOn(ReadOnlySpan<byte> header, long next)
    {
        var baseOffset = BinaryPrimitives.ReadInt64BigEndian(header);
        var lastOffsetDelta = BinaryPrimitives.ReadInt32BigEndian(header[23..]);
        return baseOffset >= next && lastOffsetDelta >= 0 && baseOffset <= long.MaxValue - 1 - lastOffsetDelta;
    }

    /// <summary>Updates the segment's state for a batch written at <paramref name="position"/>.</summary>
    /// <returns>Whether an offset index entry, and a time index entry, were added.</returns>
    private (bool Indexed, bool Timed) Track(ReadOnlySpan<byte> batch, long position)
    {
        var last = BinaryPrimitives.ReadInt64BigEndian(batch) + BinaryPrimitives.ReadInt32BigEndian(batch[23..]);
        var maxTimestamp = BinaryPrimitives.ReadInt64BigEndian(batch[35..]);
        var baseTimestamp = BinaryPrimitives.ReadInt64BigEndian(batch[27..]);
        if ((BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatch.AttributesOffset..]) & 0x40) != 0)
        {
            // A compacted batch's delete horizon (KIP-534) sits in the base timestamp: not a record time.
            baseTimestamp = long.MinValue;
        }

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

        if (maxTimestamp > MaxTimestamp)
        {
            MaxTimestamp = maxTimestamp;
            _offsetOfMaxTimestamp = last;
        }

        NextOffset = last + 1;
        bool indexed = false, timed = false;
        if (_bytesSinceIndex > _indexInterval)
        {
            lock (_indexLock)
            {
                _index.Add((last, position));
                if (_timeIndex.Count == 0 || MaxTimestamp > _timeIndex[^1].Timestamp)
                {
                    _timeIndex.Add((MaxTimestamp, _offsetOfMaxTimestamp));
                    timed = true;
                }
            }

            indexed = true;
            _bytesSinceIndex = 0;
        }

        _bytesSinceIndex += batch.Length;
        return (indexed, timed);
    }

    private void WriteLastIndexEntries(bool timed)
    {
        Span<byte> entry = stackalloc byte[TimeIndexEntrySize];
        (long Offset, long Position) last;
        (long Timestamp, long Offset) time;
        int count, timeCount;
        lock (_indexLock)
        {
            last = _index[^1];
            count = _index.Count;
            time = _timeIndex.Count > 0 ? _timeIndex[^1] : default;
            timeCount = _timeIndex.Count;
        }

        BinaryPrimitives.WriteInt32BigEndian(entry, (int)(last.Offset - BaseOffset));
        BinaryPrimitives.WriteUInt32BigEndian(entry[4..], (uint)last.Position);
        RandomAccess.Write(_indexFile!, entry[..IndexEntrySize], (long)(count - 1) * IndexEntrySize);
        if (timed)
        {
            WriteTimeEntry(time, timeCount);
        }
    }

    private void WriteTimeEntry((long Timestamp, long Offset) time, int count)
    {
        Span<byte> entry = stackalloc byte[TimeIndexEntrySize];
        BinaryPrimitives.WriteInt64BigEndian(entry, time.Timestamp);
        BinaryPrimitives.WriteInt32BigEndian(entry[8..], (int)(time.Offset - BaseOffset));
        RandomAccess.Write(_timeIndexFile!, entry, (long)(count - 1) * TimeIndexEntrySize);
    }

    /// <summary>
    /// The segment stops being the active one: its time index gets a last entry for its largest
    /// timestamp, so a clean start reads a closed segment's timestamps from the index alone.
    /// </summary>
    public void OnRolled()
    {
        TrimPadding();
        (long, long) entry;
        int count;
        lock (_indexLock)
        {
            if (MaxTimestamp < 0 || (_timeIndex.Count > 0 && MaxTimestamp <= _timeIndex[^1].Timestamp))
            {
                return;
            }

            _timeIndex.Add((MaxTimestamp, _offsetOfMaxTimestamp));
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
            _indexFilesBroken = true;
        }
    }

    /// <summary>A file position at or before the batch holding <paramref name="offset"/>.</summary>
    public long LookupPosition(long offset)
    {
        lock (_indexLock)
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
    /// A file position at or before the first batch that may hold a timestamp at or after
    /// <paramref name="timestamp"/>, from the time index: the batch after the last entry below it.
    /// </summary>
    public long LookupTimestampPosition(long timestamp)
    {
        long offset;
        lock (_indexLock)
        {
            if (_unsetTimestamps)
            {
                return 0;
            }

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

            if (found < 0)
            {
                return 0;
            }

            // Every batch up to that entry's offset has timestamps below the target.
            offset = _timeIndex[found].Offset + 1;
        }

        return LookupPosition(offset);
    }

    // The block holding the end of the data is rewritten whole: the bytes of it already in the
    // file (kept in _tail), then the batch, then zeros to the block's end. Larger batches go in
    // ChunkSize pieces; readers never look past Size, which moves only once all are written.
    private void WriteDirect(SafeFileHandle direct, ReadOnlySpan<byte> batch, long position)
    {
        var start = DirectIo.AlignDown(position);
        var head = (int)(position - start);
        if (head > 0 && _tail is null)
        {
            // Opened with a partial last block: read it once.
            _tail = new byte[DirectIo.BlockSize];
            if (RandomAccess.Read(Handle, _tail.AsSpan(0, head), start) != head)
            {
                throw new IOException($"short read of the last block of {Path}");
            }
        }

        // Blocks are reserved ahead of the writes, a few megabytes at a time.
        var end = DirectIo.AlignUp(position + batch.Length);
        if (end > _preallocatedTo && !_cannotPreallocate)
        {
            var from = Math.Max(_preallocatedTo, start);
            var to = end + PreallocateBytes;
            if (DirectIo.Preallocate(direct, from, to - from))
            {
                _preallocatedTo = to;
            }
            else
            {
                _cannotPreallocate = true;
            }
        }

        // One pooled chunk per ChunkSize bytes, all written with one pwritev.
        var chunks = t_chunks ??= [];
        var pieces = t_pieces ??= [];
        try
        {
            var filled = head;
            while (true)
            {
                var chunk = DirectIo.Rent();
                chunks.Add(chunk);
                var span = chunk.Span;
                if (chunks.Count == 1)
                {
                    _tail.AsSpan(0, head).CopyTo(span);
                }
                else
                {
                    filled = 0;
                }

                var take = Math.Min(batch.Length, span.Length - filled);
                batch[..take].CopyTo(span[filled..]);
                batch = batch[take..];
                filled += take;
                if (batch.IsEmpty)
                {
                    break;
                }

                pieces.Add(chunk.Memory);
            }

            var last = chunks[^1].Span;
            var padded = (int)DirectIo.AlignUp(filled);
            last[filled..padded].Clear();
            if (pieces.Count == 0)
            {
                RandomAccess.Write(direct, last[..padded], start);
            }
            else
            {
                pieces.Add(chunks[^1].Memory[..padded]);
                RandomAccess.Write(direct, pieces, start);
            }

            // What stays in memory: the part of the last block that holds data.
            var kept = (int)DirectIo.AlignDown(filled);
            _tail ??= new byte[DirectIo.BlockSize];
            last[kept..filled].CopyTo(_tail);
        }
        finally
        {
            foreach (var chunk in chunks)
            {
                DirectIo.Return(chunk);
            }

            chunks.Clear();
            pieces.Clear();
        }
    }

    private const long PreallocateBytes = 8L * 1024 * 1024;

    [ThreadStatic]
    private static List<AlignedBuffer>? t_chunks;

    [ThreadStatic]
    private static List<ReadOnlyMemory<byte>>? t_pieces;

    /// <summary>
    /// Reads from <paramref name="position"/> into <paramref name="destination"/>; returns the bytes
    /// read. Callers read only below <see cref="Size"/>, where the bytes never change. With
    /// <paramref name="readAhead"/> (a consumer reading on), the chunk after the bytes read is
    /// fetched in the background, so the consumer's next read is served from memory.
    /// </summary>
    public int Read(Span<byte> destination, long position, bool readAhead = false)
    {
        var direct = _direct;
        if (direct is null)
        {
            return RandomAccess.Read(Handle, destination, position);
        }

        // Only a consumer catching up reads this much at once; one at the end of the log does not.
        var ahead = _ahead;
        if (readAhead && destination.Length >= ReadWindow.Length && !_deleted)
        {
            if (ahead is null)
            {
                Interlocked.CompareExchange(ref _ahead, new ReadAhead(this, direct), null);
                ahead = _ahead;
            }

            ahead.Start(position);
        }

        var done = ahead?.Copy(destination, position) ?? 0;
        if (done < destination.Length)
        {
            var rest = destination[done..];
            done += rest.Length <= ReadWindow.Length / 2
                ? (t_window ??= new ReadWindow()).Read(this, direct, rest, position + done)
                : DirectIo.Read(direct, rest, position + done);
        }

        return done;
    }

    private ReadAhead? _ahead;

    // Chunks fetched ahead of a consumer, per segment: the next few aligned megabytes after where
    // it reads load in the background while it works through the ones before. A reader that
    // needs a chunk still queued loads it itself; one that is loading, it waits for. Buffers held
    // this way are capped for the whole process (past the cap reads simply go to the device),
    // come from the pool of transfer buffers and go back to it once their reader is idle for a
    // second, so a consumer that stopped holds none.
    private sealed class ReadAhead(LogSegment segment, SafeFileHandle direct)
    {
        private const int Depth = 6;
        private const int MaxBuffers = 64;
        private const int ChunkBytes = DirectIo.ChunkSize;
        private const long IdleMilliseconds = 1000;
        private static readonly System.Collections.Concurrent.ConcurrentDictionary<ReadAhead, byte> s_holding = new();
        private static int s_buffers;
        private static Timer? s_sweep;

        private readonly object _lock = new();
        private readonly Chunk[] _chunks = [.. Enumerable.Range(0, Depth + 1).Select(_ => new Chunk())];
        private bool _closed;
        private long _lastUse;

        private enum State
        {
            Empty,
            Queued,
            Loading,
            Ready,
        }

        private sealed class Chunk
        {
            public Action? Load;
            public AlignedBuffer? Buffer;
            public long Start = -1;
            public int Valid;
            public State State;
        }

        /// <summary>Copies what the chunks hold from <paramref name="position"/> on; returns the bytes copied.</summary>
        public int Copy(Span<byte> destination, long position)
        {
            var done = 0;
            lock (_lock)
            {
                _lastUse = Environment.TickCount64;
                while (done < destination.Length && !_closed)
                {
                    var at = position + done;
                    var chunk = Holding(at);
                    if (chunk is null)
                    {
                        break;
                    }

                    if (chunk.State == State.Queued)
                    {
                        // Needed now: load it on this thread rather than wait for its turn.
                        chunk.State = State.Loading;
                        Monitor.Exit(_lock);
                        try
                        {
                            Load(chunk, claimed: true);
                        }
                        finally
                        {
                            Monitor.Enter(_lock);
                        }

                        continue;
                    }

                    if (chunk.State == State.Loading)
                    {
                        Monitor.Wait(_lock);
                        continue;
                    }

                    if (at >= chunk.Start + chunk.Valid)
                    {
                        break;
                    }

                    var n = (int)Math.Min(destination.Length - done, chunk.Start + chunk.Valid - at);
                    chunk.Buffer!.Span.Slice((int)(at - chunk.Start), n).CopyTo(destination[done..]);
                    done += n;
                }
            }

            return done;
        }

        /// <summary>The consumer reads on from <paramref name="position"/>: the chunks from there on are loaded, or queued.</summary>
        public void Start(long position)
        {
            lock (_lock)
            {
                if (_closed)
                {
                    return;
                }

                _lastUse = Environment.TickCount64;
                // The chunks from the one holding position on; the one before stays too (a
                // consumer goes on from the end of the last whole batch it got, often just before).
                var size = segment.Size;
                var first = position / ChunkBytes * ChunkBytes;
                var end = first + (Depth * ChunkBytes);
                var keep = first - ChunkBytes;
                for (var start = first; start < end && start < size; start += ChunkBytes)
                {
                    var at = start;
                    var existing = Holding(at);
                    if (existing is not null && (existing.State is State.Queued or State.Loading || existing.Valid == ChunkBytes || existing.Start + existing.Valid >= size))
                    {
                        continue; // loaded (or on its way) as far as there is data
                    }

                    // The chunk for this range holding less than there is now, else one behind the reader.
                    var free = existing ?? Reusable(keep, end);
                    if (free is null)
                    {
                        break;
                    }

                    if (free.Buffer is null)
                    {
                        if (Interlocked.Increment(ref s_buffers) > MaxBuffers)
                        {
                            Interlocked.Decrement(ref s_buffers);
                            break;
                        }

                        free.Buffer = DirectIo.Rent();
                        if (s_holding.TryAdd(this, 0) && s_sweep is null)
                        {
                            Interlocked.CompareExchange(ref s_sweep, new Timer(static _ => Sweep(), null, 500, 500), null);
                        }
                    }

                    free.State = State.Queued;
                    free.Start = at;
                    free.Valid = 0;
                    free.Load ??= LoadOf(free);
                    ReadAheadThreads.Enqueue(free.Load);
                }
            }
        }

        // A separate method: a lambda in Start's loop would allocate its closure on every pass.
        private Action LoadOf(Chunk chunk) => () => Load(chunk, claimed: false);

        // The chunk holding the range of position, if any.
        private Chunk? Holding(long position)
        {
            foreach (var chunk in _chunks)
            {
                if (chunk.State != State.Empty && position >= chunk.Start && position < chunk.Start + ChunkBytes)
                {
                    return chunk;
                }
            }

            return null;
        }

        // A chunk not loading and outside [keep, end): never used, or behind the reader.
        private Chunk? Reusable(long keep, long end)
        {
            foreach (var chunk in _chunks)
            {
                if (chunk.State is State.Empty or State.Ready && (chunk.Start < keep || chunk.Start >= end))
                {
                    return chunk;
                }
            }

            return null;
        }

        private void Load(Chunk chunk, bool claimed)
        {
            if (!claimed)
            {
                lock (_lock)
                {
                    if (chunk.State != State.Queued)
                    {
                        return; // a reader took it
                    }

                    chunk.State = State.Loading;
                }
            }

            var valid = 0;
            try
            {
                // Only bytes below the size seen before the read are kept: they never change.
                var size = segment.Size;
                var read = RandomAccess.Read(direct, chunk.Buffer!.Span, chunk.Start);
                valid = (int)Math.Max(0, Math.Min(read, size - chunk.Start));
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
            {
                // Nothing kept: the consumer's own read reports the error.
            }

            lock (_lock)
            {
                chunk.Valid = valid;
                chunk.State = State.Ready;
                if (_closed)
                {
                    Release(chunk);
                }

                Monitor.PulseAll(_lock);
            }
        }

        public void Close()
        {
            lock (_lock)
            {
                _closed = true;
                ReleaseAll();
                Monitor.PulseAll(_lock);
            }
        }

        // Gives the buffers of readers idle for a while back to the pool.
        private static void Sweep()
        {
            var now = Environment.TickCount64;
            foreach (var ahead in s_holding.Keys)
            {
                lock (ahead._lock)
                {
                    if (now - ahead._lastUse >= IdleMilliseconds)
                    {
                        ahead.ReleaseAll();
                    }
                }
            }
        }

        private void ReleaseAll()
        {
            var holding = false;
            foreach (var chunk in _chunks)
            {
                if (chunk.State is State.Loading)
                {
                    holding = true;
                }
                else
                {
                    Release(chunk);
                }
            }

            if (!holding)
            {
                s_holding.TryRemove(this, out _);
            }
        }

        private static void Release(Chunk chunk)
        {
            if (chunk.Buffer is not null)
            {
                DirectIo.Return(chunk.Buffer);
                chunk.Buffer = null;
                chunk.Start = -1;
                chunk.Valid = 0;
                chunk.State = State.Empty;
                Interlocked.Decrement(ref s_buffers);
            }
        }
    }

    [ThreadStatic]
    private static ReadWindow? t_window;

    // Batch headers are read a few dozen bytes at a time, often one after another: each thread
    // keeps the last block range it read directly, so a walk over headers costs one read.
    private sealed class ReadWindow
    {
        public const int Length = 64 * 1024;

        private readonly AlignedBuffer _buffer = new(Length);
        private LogSegment? _segment;
        private long _start;
        private int _valid;

        public int Read(LogSegment segment, SafeFileHandle direct, Span<byte> destination, long position)
        {
            if (!ReferenceEquals(segment, _segment) || position < _start || position + destination.Length > _start + _valid)
            {
                // Only bytes below the size seen before the read are kept: they never change.
                var size = segment.Size;
                _segment = null;
                _start = DirectIo.AlignDown(position);
                var read = RandomAccess.Read(direct, _buffer.Span, _start);
                _valid = (int)Math.Max(0, Math.Min(read, size - _start));
                _segment = segment;
                if (position + destination.Length > _start + _valid)
                {
                    // Past what is published: read it as it is now, without keeping it.
                    return DirectIo.Read(direct, destination, position);
                }
            }

            _buffer.Span.Slice((int)(position - _start), destination.Length).CopyTo(destination);
            return destination.Length;
        }
    }

    /// <summary>
    /// Cuts the file back to <see cref="Size"/> when direct writes left zeros after the last block's
    /// data: a segment that stops being active, or closes, has exactly its batches in it, as in Kafka.
    /// </summary>
    public void TrimPadding()
    {
        if (_direct is not null && _preallocatedTo > DirectIo.AlignUp(Size))
        {
            // The blocks reserved past the data go back.
            DirectIo.Release(_direct, DirectIo.AlignUp(Size), _preallocatedTo - DirectIo.AlignUp(Size));
            _preallocatedTo = 0;
        }

        if (_direct is not null && RandomAccess.GetLength(Handle) > Size)
        {
            FileLayer.BeforeWrite(Path);
            RandomAccess.SetLength(Handle, Size);
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
            var length = FileLayer.Observer is null ? 0 : RandomAccess.GetLength(Handle);
            FileLayer.BeforeWrite(Path);
            RandomAccess.FlushToDisk(Handle);
            FileLayer.Synced(Path, length);
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

    /// <summary>fsync of the index files (a clean close; a crash rebuilds them from the log).</summary>
    public void FlushIndexes()
    {
        if (_indexFilesBroken)
        {
            lock (_indexLock)
            {
                WriteIndexes();
            }

            _indexFilesBroken = false;
        }

        RandomAccess.FlushToDisk(_indexFile!);
        RandomAccess.FlushToDisk(_timeIndexFile!);
    }

    /// <summary>Renames the files to <c>.deleted</c>; the log stays open for readers until <see cref="DisposeAndDelete"/>.</summary>
    public void MarkDeleted()
    {
        _deleted = true;
        foreach (var path in new[] { Path, IndexPath, TimeIndexPath })
        {
            try
            {
                File.Move(path, path + DeletedSuffix, overwrite: true);
                _renamed.Add(path);
            }
            catch (IOException)
            {
                // Renaming is a courtesy for restarts; the segment is out of the log either way.
            }
        }
    }

    /// <summary>
    /// Closes the files and removes them. Once renamed, only the <c>.deleted</c> files go: the
    /// cleaner puts a segment's replacement at the original paths.
    /// </summary>
    public void DisposeAndDelete()
    {
        Dispose();
        foreach (var path in new[] { Path, IndexPath, TimeIndexPath })
        {
            File.Delete(_renamed.Contains(path) ? path + DeletedSuffix : path);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _ahead?.Close();
        _direct?.Dispose();
        Handle.Dispose();
        _indexFile?.Dispose();
        _timeIndexFile?.Dispose();
    }
}
