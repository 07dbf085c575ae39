using Microsoft.Win32.SafeHandles;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// Opening an existing segment: trusting it after a clean stop (its index files loaded, only the
/// batch headers after the last index entry read), or walking every batch with its CRC and
/// cutting a torn or corrupt tail at the last whole batch.
/// </summary>
internal static class SegmentRecovery
{
    /// <summary>
    /// Opens an existing segment and walks its batches, checking each one's length, magic, offsets
    /// and CRC, and rewrites its index files from what it finds. A torn or corrupt tail (a partial
    /// batch, a bad CRC) is cut off at the last whole batch.
    /// </summary>
    /// <param name="path">The segment's <c>.log</c> file.</param>
    /// <param name="baseOffset">The offset in its name.</param>
    /// <param name="indexInterval">index.interval.bytes.</param>
    /// <param name="producers">
    /// The producer state up to the segment's start, fed its batches. With
    /// <paramref name="rebuildTxnIndex"/> it must be the partition's real state (the transactions
    /// open before the segment included): the transaction index is rebuilt from the markers it
    /// ends, as Kafka's <c>LogSegment.recover</c> does. Otherwise the index file is kept, cut to
    /// the markers that remain.
    /// </param>
    /// <param name="runtime">The storage runtime.</param>
    /// <param name="directIo">Whether the segment uses direct I/O.</param>
    /// <param name="rebuildTxnIndex">Whether to rebuild the <c>.txnindex</c> from the segment.</param>
    /// <returns>The segment, and the number of bytes truncated.</returns>
    public static (LogSegment Segment, long Truncated) Recover(string path, long baseOffset, int indexInterval, ProducerStateTable producers, StorageRuntime runtime, bool directIo = false, bool rebuildTxnIndex = true)
    {
        var segment = new LogSegment(path, baseOffset, File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete), indexInterval, runtime);
        if (rebuildTxnIndex)
        {
            segment.DropTxnIndex();
        }
        else
        {
            segment.FindTxnIndex();
        }

        // The handle is the runtime's FileCache's from here on: leased for the walk, so opens of
        // other logs recovering beside this one can't close it under it.
        using var file = segment.LeaseHandle();
        var handle = file.Handle;
        var length = RandomAccess.GetLength(handle);
        var position = 0L;
        var headerBytes = new byte[RecordBatch.HeaderSize];
        byte[] buffer = [];
        var next = baseOffset;
        while (position + RecordBatch.HeaderSize <= length)
        {
            RandomAccess.Read(handle, headerBytes, position);
            var header = new RecordBatchHeader(headerBytes);
            var size = header.TotalSize;
            if (size < RecordBatch.HeaderSize || position + size > length || header.Magic != 2 || !FollowsOn(header, next))
            {
                break;
            }

            if (buffer.Length < size)
            {
                buffer = new byte[Math.Max(size, 64 * 1024)];
            }

            var batch = buffer.AsSpan(0, (int)size);
            if (RandomAccess.Read(handle, batch, position) != size || !new RecordBatchHeader(batch).IsCrcValid())
            {
                break;
            }

            if (ProducerStateTable.Tracks(batch) && producers.Update(batch) is { IsAbort: true } aborted && rebuildTxnIndex)
            {
                segment.AddAborted(aborted);
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

        if (!rebuildTxnIndex)
        {
            segment.TxnIndex?.TruncateTo(next);
        }

        segment.Opened(position, rewriteIndexFiles: true, directIo);
        return (segment, truncated);
    }

    /// <summary>
    /// Opens a segment that was closed cleanly: its length is trusted and its indexes are loaded
    /// from their files, so only the batch headers after the last index entry are read. An index
    /// file that is missing or fails its checks is rebuilt by <see cref="Recover"/>.
    /// </summary>
    public static LogSegment Load(string path, long baseOffset, int indexInterval, StorageRuntime runtime, bool directIo = false) =>
        Load(path, baseOffset, indexInterval, runtime, directIo, verifyTail: false).Segment;

    /// <summary>
    /// As <see cref="Load(string, long, int, StorageRuntime, bool)"/>; with <paramref name="verifyTail"/>
    /// the batches after the last index entry (at most about one index interval and one batch) are
    /// also checked against their CRC. When the batches don't add up (a header that is not a batch,
    /// a failed CRC) the segment is recovered and cut at the last whole batch, and <c>CorruptAt</c>
    /// is the position of the first bad byte; otherwise it is -1.
    /// </summary>
    public static (LogSegment Segment, long CorruptAt) Load(string path, long baseOffset, int indexInterval, StorageRuntime runtime, bool directIo, bool verifyTail)
    {
        var segment = new LogSegment(path, baseOffset, File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete), indexInterval, runtime);
        long length;
        using (var file = segment.LeaseHandle())
        {
            length = RandomAccess.GetLength(file.Handle);
        }

        if (!segment.Indexes.TryLoad(length) || !WalkUnindexedTail(segment, length) || (verifyTail && !TailPassesCrc(segment, length)))
        {
            segment.Dispose(); // its file leaves the cache

            // The producer state before this segment is not known here: its transaction index is
            // kept as it is (cut to what remains), not rebuilt from a blank state.
            var (recovered, cut) = Recover(path, baseOffset, indexInterval, new ProducerStateTable(), runtime, directIo, rebuildTxnIndex: false);
            return (recovered, cut > 0 ? recovered.Size : -1);
        }

        segment.FindTxnIndex();
        segment.Opened(length, rewriteIndexFiles: false, directIo);
        return (segment, -1);
    }

    /// <summary>
    /// After the indexes loaded: the batches after the last index entry, whose headers give the log
    /// end and timestamps. False when they don't add up to the file's length.
    /// </summary>
    private static bool WalkUnindexedTail(LogSegment segment, long length)
    {
        var indexes = segment.Indexes;
        if (indexes.LastTimeEntry is { } lastTime)
        {
            segment.NoteLargestTimestamp(lastTime.Timestamp, lastTime.Offset);
        }

        using var file = segment.LeaseHandle();
        var headerBytes = new byte[RecordBatch.HeaderSize];
        if (length > 0)
        {
            RandomAccess.Read(file.Handle, headerBytes, 0);
            segment.FirstBatchTimestamp = new RecordBatchHeader(headerBytes).MaxTimestamp;
        }

        // The walk starts at the batch the last index entry names (it ends at that entry's offset),
        // so its offsets lie after the entry before; each later one follows the batch ahead of it.
        var at = indexes.LastIndexedPosition;
        var indexedLast = indexes.LastIndexedOffset;
        var next = indexes.LastIndexedFrom;
        while (at + RecordBatch.HeaderSize <= length)
        {
            if (RandomAccess.Read(file.Handle, headerBytes, at) != headerBytes.Length)
            {
                return false;
            }

            var header = new RecordBatchHeader(headerBytes);
            if (header.Magic != 2)
            {
                return false;
            }

            var size = header.TotalSize;
            if (size < RecordBatch.HeaderSize || at + size > length || !FollowsOn(header, next))
            {
                return false;
            }

            var last = header.LastOffset;
            if (indexedLast >= 0 && last != indexedLast)
            {
                return false;
            }

            indexedLast = -1;
            next = last + 1;
            segment.NoteBatch(last, header.MaxTimestamp);
            at += size;
        }

        return at == length;
    }

    /// <summary>Whether the batches after the last index entry are whole and pass their CRC, up to the file's end.</summary>
    private static bool TailPassesCrc(LogSegment segment, long length)
    {
        using var file = segment.LeaseHandle();
        var position = segment.Indexes.LastIndexedPosition;
        var buffer = new byte[64 * 1024];
        while (position + RecordBatch.HeaderSize <= length)
        {
            RandomAccess.Read(file.Handle, buffer.AsSpan(0, RecordBatch.HeaderSize), position);
            var size = RecordBatchHeader.DeclaredSize(buffer);
            if (size < RecordBatch.HeaderSize || position + size > length)
            {
                return false;
            }

            if (buffer.Length < size)
            {
                buffer = new byte[size];
            }

            var batch = buffer.AsSpan(0, (int)size);
            if (RandomAccess.Read(file.Handle, batch, position) != size || !new RecordBatchHeader(batch).IsCrcValid())
            {
                return false;
            }

            position += size;
        }

        return position == length;
    }

    /// <summary>
    /// Whether a batch's offsets (from its header: the base offset is not covered by the CRC) start
    /// at or after <paramref name="next"/>, the segment's base or the end of the batch ahead of it,
    /// and form a range that neither runs backwards nor overflows. A batch that fails is corrupt:
    /// recovery cuts there, as at a failed CRC (a negative base offset made the log end negative).
    /// </summary>
    private static bool FollowsOn(RecordBatchHeader header, long next)
    {
        var baseOffset = header.BaseOffset;
        var lastOffsetDelta = header.LastOffsetDelta;
        return baseOffset >= next && lastOffsetDelta >= 0 && baseOffset <= long.MaxValue - 1 - lastOffsetDelta;
    }

    private static bool IsZero(SafeFileHandle handle, long position, int length)
    {
        Span<byte> bytes = stackalloc byte[DirectIo.BlockSize];
        var read = RandomAccess.Read(handle, bytes[..length], position);
        return read == length && !bytes[..length].ContainsAnyExcept((byte)0);
    }
}
