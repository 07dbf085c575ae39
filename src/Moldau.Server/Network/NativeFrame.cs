using System.Buffers;
using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Moldau.Server.Network;

/// <summary>
/// A large request frame in its own anonymous memory mapping. The mapping takes address space for
/// the declared size, but pages become resident only as the body's bytes arrive, and unmapping
/// gives them back to the system at once: unlike a pooled array, a frame abandoned half-way leaves
/// nothing resident once its connection closes.
/// </summary>
internal sealed unsafe partial class NativeFrame : MemoryManager<byte>
{
    private const int ProtRead = 1, ProtWrite = 2, MapPrivate = 2, MapAnonymous = 0x20;

    private readonly int _length;
    private nint _address;

    private NativeFrame(nint address, int length)
    {
        _address = address;
        _length = length;
    }

    /// <summary>Maps <paramref name="length"/> bytes (Linux); elsewhere the memory comes from the native allocator.</summary>
    public static NativeFrame Allocate(int length)
    {
        if (!OperatingSystem.IsLinux())
        {
            return new NativeFrame((nint)NativeMemory.Alloc((nuint)length), length);
        }

        var address = Mmap(0, (nuint)length, ProtRead | ProtWrite, MapPrivate | MapAnonymous, -1, 0);
        if (address == -1)
        {
            throw new OutOfMemoryException($"mmap of {length} bytes for a request frame failed: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }

        return new NativeFrame(address, length);
    }

    /// <inheritdoc/>
    public override Span<byte> GetSpan()
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        return new Span<byte>((void*)_address, _length);
    }

    /// <inheritdoc/>
    public override MemoryHandle Pin(int elementIndex = 0)
    {
        ObjectDisposedException.ThrowIf(_address == 0, this);
        return new MemoryHandle((byte*)_address + elementIndex);
    }

    /// <inheritdoc/>
    public override void Unpin()
    {
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        var address = Interlocked.Exchange(ref _address, 0);
        if (address == 0)
        {
            return;
        }

        if (OperatingSystem.IsLinux())
        {
            _ = Munmap(address, (nuint)_length);
        }
        else
        {
            NativeMemory.Free((void*)address);
        }
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(nint address, nuint length, int protection, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(nint address, nuint length);
}
