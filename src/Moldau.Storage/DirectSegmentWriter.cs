using System.Buffers;

namespace Moldau.Storage;

/// <summary>
/// Appends to a segment file opened with <c>O_DIRECT</c> (see <see cref="DirectIo"/>): every write
/// is whole blocks from aligned pooled buffers. The block holding the end of the data is rewritten
/// whole with the next append: the bytes of it already in the file (kept in memory), then the
/// batch, then zeros to the block's end. Blocks are reserved ahead of the writes, and given back
/// when the segment stops growing.
/// </summary>
/// <remarks>
/// The segment's appends are serialized by its caller, so one writer needs no lock. The direct
/// handle is the runtime's <see cref="FileCache"/>'s: leased for each write, so it is never closed
/// under one, and closed when cold. Each write is on the device (pwrite returned) before its lease
/// ends, so nothing waits in memory for a handle. When the cache closes the handle, the kept bytes
/// of the last block go back to the pool (<see cref="DropTail"/>): a cold segment holds none, and
/// its next append reads them back from the file through the reopened handle.
/// </remarks>
internal sealed class DirectSegmentWriter(string path, CachedFile direct, AlignedBufferPool pool)
{
    // Reserved ahead of the data: as much again as the segment holds, between these bounds. A busy
    // segment reserves 8 MiB at a time; one of 100,000 partitions that got a few records reserves
    // 64 KiB, not 8 MiB each (which filled 78 GB of disk at 10,000 written partitions).
    private const long MinPreallocateBytes = 64L * 1024;
    private const long MaxPreallocateBytes = 8L * 1024 * 1024;

    // One pooled chunk per ChunkSize bytes of an append, and their memory for one pwritev: shared
    // by the writes of one thread (a write is synchronous), so an append allocates nothing and a
    // segment holds no lists.
    [ThreadStatic]
    private static List<AlignedBuffer>? t_chunks;

    [ThreadStatic]
    private static List<ReadOnlyMemory<byte>>? t_pieces;

    private byte[]? _tail;
    private long _preallocatedTo;
    private bool _cannotPreallocate;

    /// <summary>Whether the bytes of the last partial block are held in memory (false once the handle was closed).</summary>
    public bool HoldsTail => Volatile.Read(ref _tail) is not null;

    /// <summary>
    /// Writes <paramref name="batch"/> at <paramref name="position"/>, the end of the data. Larger
    /// batches go in <see cref="DirectIo.ChunkSize"/> pieces, all with one pwritev; readers never
    /// look past the segment's size, which moves only once all are written.
    /// </summary>
    public void Write(ReadOnlySpan<byte> batch, long position)
    {
        using var file = direct.Lease();
        var handle = file.Handle;
        var start = DirectIo.AlignDown(position);
        var head = (int)(position - start);
        if (head > 0 && _tail is null)
        {
            // Opened with a partial last block, or the handle was closed since: read it once.
            var tail = ArrayPool<byte>.Shared.Rent(DirectIo.BlockSize);
            if (DirectIo.Read(pool, handle, tail.AsSpan(0, head), start) != head)
            {
                ArrayPool<byte>.Shared.Return(tail);
                throw new IOException($"short read of the last block of {path}");
            }

            _tail = tail;
        }

        // Blocks are reserved ahead of the writes, a few megabytes at a time.
        var end = DirectIo.AlignUp(position + batch.Length);
        if (end > _preallocatedTo && !_cannotPreallocate)
        {
            var from = Math.Max(_preallocatedTo, start);
            var to = end + Math.Clamp(end, MinPreallocateBytes, MaxPreallocateBytes);
            if (DirectIo.Preallocate(handle, from, to - from))
            {
                _preallocatedTo = to;
            }
            else
            {
                _cannotPreallocate = true;
            }
        }

        var chunks = t_chunks ??= [];
        var pieces = t_pieces ??= [];
        try
        {
            var filled = head;
            while (true)
            {
                var chunk = pool.Rent();
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
                RandomAccess.Write(handle, last[..padded], start);
            }
            else
            {
                pieces.Add(chunks[^1].Memory[..padded]);
                RandomAccess.Write(handle, pieces, start);
            }

            // What stays in memory: the part of the last block that holds data.
            var kept = (int)DirectIo.AlignDown(filled);
            _tail ??= ArrayPool<byte>.Shared.Rent(DirectIo.BlockSize);
            last[kept..filled].CopyTo(_tail);
        }
        finally
        {
            foreach (var chunk in chunks)
            {
                pool.Return(chunk);
            }

            chunks.Clear();
            pieces.Clear();
        }
    }

    /// <summary>The blocks reserved past the data (of <paramref name="size"/> bytes) go back.</summary>
    public void ReleaseReserved(long size)
    {
        if (_preallocatedTo > DirectIo.AlignUp(size))
        {
            using var file = direct.Lease();
            DirectIo.Release(file.Handle, DirectIo.AlignUp(size), _preallocatedTo - DirectIo.AlignUp(size));
            _preallocatedTo = 0;
        }
    }

    /// <summary>
    /// The cache closed the handle (no write is in progress: a write holds a lease): the last
    /// block's bytes go back to the pool, read again by the next write.
    /// </summary>
    public void DropTail()
    {
        if (Interlocked.Exchange(ref _tail, null) is { } tail)
        {
            ArrayPool<byte>.Shared.Return(tail);
        }
    }
}
