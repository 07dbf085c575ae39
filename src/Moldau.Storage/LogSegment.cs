using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// One segment file, <c>&lt;20-digit base offset&gt;.log</c>: RecordBatch v2 bytes back to back,
/// with a sparse offset index (batch base offset to file position) kept in memory.
/// </summary>
internal sealed class LogSegment : IDisposable
{
    private readonly List<(long Offset, long Position)> _index = [];
    private readonly Lock _indexLock = new();
    private readonly int _indexInterval;
    private long _bytesSinceIndex;
    private long _size;

    private LogSegment(string path, long baseOffset, SafeFileHandle handle, int indexInterval)
    {
        Path = path;
        BaseOffset = baseOffset;
        Handle = handle;
        _indexInterval = indexInterval;
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

    /// <summary>The offset after the last batch, or <see cref="BaseOffset"/> when empty.</summary>
    public long NextOffset { get; private set; }

    /// <summary>The segment file name for <paramref name="baseOffset"/>.</summary>
    public static string FileName(long baseOffset) => baseOffset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".log";

    /// <summary>Creates an empty segment file.</summary>
    public static LogSegment Create(string directory, long baseOffset, int indexInterval)
    {
        var path = System.IO.Path.Combine(directory, FileName(baseOffset));
        var handle = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        return new LogSegment(path, baseOffset, handle, indexInterval) { NextOffset = baseOffset };
    }

    /// <summary>
    /// Opens an existing segment and walks its batches, rebuilding the index. A torn or corrupt
    /// tail (a partial batch, a bad CRC) is cut off at the last whole batch.
    /// </summary>
    /// <returns>The segment, and the number of bytes truncated.</returns>
    public static (LogSegment Segment, long Truncated) Recover(string path, long baseOffset, int indexInterval, ProducerStateTable producers)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        var segment = new LogSegment(path, baseOffset, handle, indexInterval) { NextOffset = baseOffset };
        var length = RandomAccess.GetLength(handle);
        var position = 0L;
        var header = new byte[RecordBatch.HeaderSize];
        byte[] buffer = [];
        while (position + RecordBatch.HeaderSize <= length)
        {
            RandomAccess.Read(handle, header, position);
            var size = RecordBatch.DeclaredSize(header);
            if (size < RecordBatch.HeaderSize || position + size > length || header[RecordBatch.MagicOffset] != 2)
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

            segment.MaxTimestamp = Math.Max(segment.MaxTimestamp, BinaryPrimitives.ReadInt64BigEndian(batch[35..]));
            var batchBase = BinaryPrimitives.ReadInt64BigEndian(batch);
            segment.AddToIndex(batchBase, position, size);
            segment.NextOffset = batchBase + BinaryPrimitives.ReadInt32BigEndian(batch[23..]) + 1;
            position += size;
        }

        var truncated = length - position;
        if (truncated > 0)
        {
            RandomAccess.SetLength(handle, position);
        }

        segment._size = position;
        return (segment, truncated);
    }

    /// <summary>Appends a whole batch at the end (the caller serializes appends).</summary>
    public void Append(ReadOnlySpan<byte> batch, long baseOffset, long nextOffset)
    {
        var position = _size;
        RandomAccess.Write(Handle, batch, position);
        MaxTimestamp = Math.Max(MaxTimestamp, BinaryPrimitives.ReadInt64BigEndian(batch[35..]));
        AddToIndex(baseOffset, position, batch.Length);
        NextOffset = nextOffset;
        Volatile.Write(ref _size, position + batch.Length);
    }

    private void AddToIndex(long baseOffset, long position, long size)
    {
        if (position == 0 || _bytesSinceIndex >= _indexInterval)
        {
            lock (_indexLock)
            {
                _index.Add((baseOffset, position));
            }

            _bytesSinceIndex = 0;
        }

        _bytesSinceIndex += size;
    }

    /// <summary>A file position at or before the batch holding <paramref name="offset"/>.</summary>
    public long LookupPosition(long offset)
    {
        lock (_indexLock)
        {
            int lo = 0, hi = _index.Count - 1, found = -1;
            while (lo <= hi)
            {
                var mid = (lo + hi) >>> 1;
                if (_index[mid].Offset <= offset)
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

    /// <summary>The suffix a retired segment's file gets until it is removed.</summary>
    public const string DeletedSuffix = ".deleted";

    private volatile bool _deleted;
    private volatile bool _renamed;

    /// <summary>fsync of the file; nothing once the segment is retired (its data no longer counts).</summary>
    public void Flush()
    {
        if (_deleted)
        {
            return;
        }

        try
        {
            RandomAccess.FlushToDisk(Handle);
        }
        catch (ObjectDisposedException) when (_deleted)
        {
        }
    }

    /// <summary>Renames the file to <c>.deleted</c>; it stays open for readers until <see cref="DisposeAndDelete"/>.</summary>
    public void MarkDeleted()
    {
        _deleted = true;
        try
        {
            File.Move(Path, Path + DeletedSuffix, overwrite: true);
            _renamed = true;
        }
        catch (IOException)
        {
            // Renaming is a courtesy for restarts; the segment is out of the log either way.
        }
    }

    /// <summary>
    /// Closes the file and removes it. Once renamed, only the <c>.deleted</c> file goes: the
    /// cleaner puts a segment's replacement at the original path.
    /// </summary>
    public void DisposeAndDelete()
    {
        Handle.Dispose();
        File.Delete(_renamed ? Path + DeletedSuffix : Path);
    }

    /// <inheritdoc/>
    public void Dispose() => Handle.Dispose();
}
