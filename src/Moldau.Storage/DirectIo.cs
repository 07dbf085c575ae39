using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>
/// Segment data written and read with <c>O_DIRECT</c>: straight between the broker's own
/// reusable buffers and the device, bypassing the page cache.
/// </summary>
/// <remarks>
/// Why: on the virtual machines this broker is measured on, every page of fresh memory the
/// kernel hands out costs 1-3 ms per MB on first touch (the hypervisor backs it), and a page
/// cache that grows with the log touches fresh memory for every byte written: buffered writes
/// ran at 0.4-0.6 GB/s there against 2.3-4.3 GB/s for direct writes from reused buffers (see
/// docs/performance.md). Direct I/O needs offsets, lengths and memory aligned to the device's
/// block: <see cref="BlockSize"/> (4 KiB) covers every common device. The segment keeps its
/// last partial block in memory and rewrites that block whole with the next append; the file
/// is cut back to its logical length when the segment rolls or closes.
/// </remarks>
internal static class DirectIo
{
    /// <summary>Alignment of direct reads and writes.</summary>
    public const int BlockSize = 4096;

    /// <summary>Bytes in one pooled transfer buffer: larger transfers go in pieces of this size.</summary>
    public const int ChunkSize = 1024 * 1024;

    private const int ReadWrite = 0x2;
    private const int CloseOnExec = 0x80000;
    private const int NoSuchFile = 2;
    private const int InvalidArgument = 22;

    /// <summary>Opens <paramref name="path"/> for direct I/O, or returns null where that is not possible (not Linux, a file system without it).</summary>
    public static SafeFileHandle? TryOpen(string path) => TryOpen(path, out _);

    /// <summary>
    /// Opens the existing file <paramref name="path"/> for direct I/O (without creating or cutting
    /// it), or returns null: <paramref name="unsupported"/> tells whether because direct I/O is not
    /// possible there (not Linux, a file system without it) rather than the open failed (no
    /// descriptor left, no file).
    /// </summary>
    public static SafeFileHandle? TryOpen(string path, out bool unsupported)
    {
        unsupported = true;
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var direct = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 or Architecture.X86 => 0x4000,
            Architecture.Arm64 or Architecture.Arm => 0x10000,
            _ => 0,
        };
        if (direct == 0)
        {
            return null;
        }

        var fd = Libc.Open(path, ReadWrite | CloseOnExec | direct, 0);
        if (fd >= 0)
        {
            unsupported = false;
            return new SafeFileHandle(fd, ownsHandle: true);
        }

        // A file system without O_DIRECT refuses it with EINVAL.
        unsupported = Marshal.GetLastPInvokeError() == InvalidArgument;
        return null;
    }

    /// <summary>
    /// Reopens the existing file <paramref name="path"/> for direct I/O, as <see cref="FileCache"/>
    /// does for a segment whose direct handle it closed; throws <see cref="IOException"/> when it can't.
    /// </summary>
    public static SafeFileHandle OpenExisting(string path)
    {
        if (TryOpen(path, out _) is { } handle)
        {
            return handle;
        }

        var error = Marshal.GetLastPInvokeError();
        var message = $"cannot open {path} for direct I/O: {Marshal.GetPInvokeErrorMessage(error)}";
        throw error == NoSuchFile ? new FileNotFoundException(message, path) : new IOException(message, error);
    }

    /// <summary>Rounds <paramref name="position"/> down to a block boundary.</summary>
    public static long AlignDown(long position) => position & ~(long)(BlockSize - 1);

    /// <summary>Rounds <paramref name="position"/> up to a block boundary.</summary>
    public static long AlignUp(long position) => (position + BlockSize - 1) & ~(long)(BlockSize - 1);

    /// <summary>
    /// Reads <paramref name="destination"/>'s length from <paramref name="position"/> of a direct
    /// handle, through an aligned buffer from <paramref name="pool"/>. Returns the bytes read (fewer
    /// at the end of the file).
    /// </summary>
    public static int Read(AlignedBufferPool pool, SafeFileHandle handle, Span<byte> destination, long position)
    {
        var buffer = pool.Rent();
        try
        {
            var done = 0;
            while (done < destination.Length)
            {
                var at = position + done;
                var start = AlignDown(at);
                var skip = (int)(at - start);
                var length = (int)Math.Min(ChunkSize, AlignUp(at + destination.Length - done) - start);
                var read = RandomAccess.Read(handle, buffer.Span[..length], start);
                var useful = Math.Min(read - skip, destination.Length - done);
                if (useful <= 0)
                {
                    break;
                }

                buffer.Span.Slice(skip, useful).CopyTo(destination[done..]);
                done += useful;
                if (read < length)
                {
                    break;
                }
            }

            return done;
        }
        finally
        {
            pool.Return(buffer);
        }
    }

    /// <summary>
    /// Reserves disk blocks for [<paramref name="offset"/>, +<paramref name="length"/>) without
    /// changing the file's size, so direct writes into them do not allocate one extent at a time
    /// (measured here: sequential 368 KiB direct writes 1.3 -> 1.5 GB/s). False where the file
    /// system can't.
    /// </summary>
    public static bool Preallocate(SafeFileHandle handle, long offset, long length) =>
        OperatingSystem.IsLinux() && Libc.Fallocate((int)handle.DangerousGetHandle(), KeepSize, offset, length) == 0;

    /// <summary>Gives back the blocks of [<paramref name="offset"/>, +<paramref name="length"/>) that <see cref="Preallocate"/> reserved past the data.</summary>
    public static void Release(SafeFileHandle handle, long offset, long length)
    {
        if (OperatingSystem.IsLinux() && length > 0)
        {
            _ = Libc.Fallocate((int)handle.DangerousGetHandle(), KeepSize | PunchHole, offset, length);
        }
    }

    private const int KeepSize = 0x1;
    private const int PunchHole = 0x2;
}
