using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Moldau.Storage;

/// <summary>
/// The <see cref="DirectIo.ChunkSize"/> aligned transfer buffers of one <see cref="StorageRuntime"/>:
/// direct appends, direct reads and the read-ahead chunks all take them from here.
/// </summary>
/// <remarks>
/// The pool keeps enough for the appends, reads and read-ahead going on at once: memory the
/// process touched once stays cheap to reuse, while fresh memory costs a page fault per page
/// again. Once disposed it frees what it holds, and every buffer given back afterwards (one that
/// was out at the time) is freed rather than kept.
/// </remarks>
internal sealed class AlignedBufferPool : IDisposable
{
    private const int Kept = 64;

    private readonly ConcurrentBag<AlignedBuffer> _pool = [];
    private int _pooled;
    private volatile bool _disposed;

    /// <summary>A <see cref="DirectIo.ChunkSize"/> buffer, aligned, from the pool.</summary>
    public AlignedBuffer Rent()
    {
        if (_pool.TryTake(out var buffer))
        {
            Interlocked.Decrement(ref _pooled);
            return buffer;
        }

        return new AlignedBuffer(DirectIo.ChunkSize);
    }

    /// <summary>Gives a buffer from <see cref="Rent"/> back.</summary>
    public void Return(AlignedBuffer buffer)
    {
        if (!_disposed && Interlocked.Increment(ref _pooled) <= Kept)
        {
            _pool.Add(buffer);
            if (_disposed)
            {
                // Disposed meanwhile: nobody takes it any more.
                Drain();
            }
        }
        else
        {
            if (!_disposed)
            {
                Interlocked.Decrement(ref _pooled);
            }

            buffer.Dispose();
        }
    }

    /// <summary>Frees the buffers in the pool; those still out are freed as they come back.</summary>
    public void Dispose()
    {
        _disposed = true;
        Drain();
    }

    private void Drain()
    {
        while (_pool.TryTake(out var buffer))
        {
            buffer.Dispose();
        }
    }
}

/// <summary>
/// Native memory aligned to <see cref="DirectIo.BlockSize"/>, freed when disposed. Buffers live
/// in a pool (or with a segment's read-ahead, or an append in progress) and are disposed
/// explicitly; there is no finalizer, so no span over one can outlive its memory.
/// </summary>
internal sealed unsafe class AlignedBuffer : System.Buffers.MemoryManager<byte>
{
    private byte* _memory;

    public AlignedBuffer(int length)
    {
        Length = length;
        _memory = (byte*)NativeMemory.AlignedAlloc((nuint)length, DirectIo.BlockSize);
        GC.AddMemoryPressure(length);
    }

    /// <summary>Bytes in the buffer.</summary>
    public int Length { get; }

    /// <summary>The whole buffer.</summary>
    public Span<byte> Span => new(_memory, Length);

    /// <inheritdoc/>
    public override Span<byte> GetSpan() => Span;

    /// <inheritdoc/>
    public override System.Buffers.MemoryHandle Pin(int elementIndex = 0) => new(_memory + elementIndex);

    /// <inheritdoc/>
    public override void Unpin()
    {
    }

    /// <summary>Frees the memory.</summary>
    public void Dispose() => ((IDisposable)this).Dispose();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing) => Free();

    private void Free()
    {
        if (_memory is not null)
        {
            NativeMemory.AlignedFree(_memory);
            _memory = null;
            GC.RemoveMemoryPressure(Length);
        }
    }
}
