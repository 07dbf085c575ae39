using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>
/// Appends to a segment file opened with <c>O_DIRECT</c> (see <see cref="DirectIo"/>): every write
/// is whole blocks from aligned pooled buffers. The block holding the end of the data is rewritten
/// whole with the next append: the bytes of it already in the file (kept in memory), then the
/// batch, then zeros to the block's end. Blocks are reserved ahead of the writes, and given back
/// when the segment stops growing.
/// </summary>
/// <remarks>The segment's appends are serialized by its caller, so one writer needs no lock.</remarks>
internal sealed class DirectSegmentWriter(string path, SafeFileHandle direct, CachedFile buffered, AlignedBufferPool pool) : IDisposable
{
    private const long PreallocateBytes = 8L * 1024 * 1024;

    // One pooled chunk per ChunkSize bytes of an append, and their memory for one pwritev: kept
    // between appends so an append allocates nothing.
    private readonly List<AlignedBuffer> _chunks = [];
    private readonly List<ReadOnlyMemory<byte>> _pieces = [];
    private byte[]? _tail;
    private long _preallocatedTo;
    private bool _cannotPreallocate;

    /// <summary>The direct handle, for reads.</summary>
    public SafeFileHandle Handle => direct;

    /// <summary>
    /// Writes <paramref name="batch"/> at <paramref name="position"/>, the end of the data. Larger
    /// batches go in <see cref="DirectIo.ChunkSize"/> pieces, all with one pwritev; readers never
    /// look past the segment's size, which moves only once all are written.
    /// </summary>
    public void Write(ReadOnlySpan<byte> batch, long position)
    {
        var start = DirectIo.AlignDown(position);
        var head = (int)(position - start);
        if (head > 0 && _tail is null)
        {
            // Opened with a partial last block: read it once.
            _tail = new byte[DirectIo.BlockSize];
            using var file = buffered.Lease();
            if (RandomAccess.Read(file.Handle, _tail.AsSpan(0, head), start) != head)
            {
                throw new IOException($"short read of the last block of {path}");
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

        try
        {
            var filled = head;
            while (true)
            {
                var chunk = pool.Rent();
                _chunks.Add(chunk);
                var span = chunk.Span;
                if (_chunks.Count == 1)
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

                _pieces.Add(chunk.Memory);
            }

            var last = _chunks[^1].Span;
            var padded = (int)DirectIo.AlignUp(filled);
            last[filled..padded].Clear();
            if (_pieces.Count == 0)
            {
                RandomAccess.Write(direct, last[..padded], start);
            }
            else
            {
                _pieces.Add(_chunks[^1].Memory[..padded]);
                RandomAccess.Write(direct, _pieces, start);
            }

            // What stays in memory: the part of the last block that holds data.
            var kept = (int)DirectIo.AlignDown(filled);
            _tail ??= new byte[DirectIo.BlockSize];
            last[kept..filled].CopyTo(_tail);
        }
        finally
        {
            foreach (var chunk in _chunks)
            {
                pool.Return(chunk);
            }

            _chunks.Clear();
            _pieces.Clear();
        }
    }

    /// <summary>The blocks reserved past the data (of <paramref name="size"/> bytes) go back.</summary>
    public void ReleaseReserved(long size)
    {
        if (_preallocatedTo > DirectIo.AlignUp(size))
        {
            DirectIo.Release(direct, DirectIo.AlignUp(size), _preallocatedTo - DirectIo.AlignUp(size));
            _preallocatedTo = 0;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => direct.Dispose();
}
