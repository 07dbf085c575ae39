using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>
/// The small direct reads of one <see cref="StorageRuntime"/>: batch headers are read a few dozen
/// bytes at a time, often one after another, so each thread keeps the last aligned range it read
/// directly (a <see cref="ReadWindow"/>), and a walk over headers costs one read.
/// </summary>
internal sealed class ReadWindows : IDisposable
{
    private readonly ThreadLocal<ReadWindow> _windows = new(static () => new ReadWindow());
    private readonly AlignedBufferPool _pool;

    public ReadWindows(AlignedBufferPool pool) => _pool = pool;

    /// <summary>
    /// Reads <paramref name="destination"/> from <paramref name="position"/> of a segment's direct
    /// handle: through this thread's window when it is small, else straight through a pooled buffer.
    /// </summary>
    public int Read(LogSegment segment, SafeFileHandle direct, Span<byte> destination, long position) =>
        destination.Length <= ReadWindow.Length / 2
            ? _windows.Value!.Read(_pool, segment, direct, destination, position)
            : DirectIo.Read(_pool, direct, destination, position);

    /// <inheritdoc/>
    public void Dispose() => _windows.Dispose();
}

/// <summary>
/// One thread's window over the last aligned range it read directly from a segment. Its memory is
/// a pinned managed array (aligned inside), so the garbage collector frees it with the runtime and
/// no read in progress can outlive it.
/// </summary>
internal sealed class ReadWindow
{
    public const int Length = 64 * 1024;

    private readonly byte[] _memory = GC.AllocateUninitializedArray<byte>(Length + DirectIo.BlockSize, pinned: true);
    private readonly int _aligned;
    private LogSegment? _segment;
    private long _start;
    private int _valid;

    public unsafe ReadWindow()
    {
        var address = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_memory));
        _aligned = (int)((DirectIo.BlockSize - (address & (DirectIo.BlockSize - 1))) & (DirectIo.BlockSize - 1));
    }

    private Span<byte> Buffer => _memory.AsSpan(_aligned, Length);

    public int Read(AlignedBufferPool pool, LogSegment segment, SafeFileHandle direct, Span<byte> destination, long position)
    {
        if (!ReferenceEquals(segment, _segment) || position < _start || position + destination.Length > _start + _valid)
        {
            // Only bytes below the size seen before the read are kept: they never change.
            var size = segment.Size;
            _segment = null;
            _start = DirectIo.AlignDown(position);
            var read = RandomAccess.Read(direct, Buffer, _start);
            _valid = (int)Math.Max(0, Math.Min(read, size - _start));
            _segment = segment;
            if (position + destination.Length > _start + _valid)
            {
                // Past what is published: read it as it is now, without keeping it.
                return DirectIo.Read(pool, direct, destination, position);
            }
        }

        Buffer.Slice((int)(position - _start), destination.Length).CopyTo(destination);
        return destination.Length;
    }
}
