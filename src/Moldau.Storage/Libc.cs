using System.Runtime.InteropServices;

namespace Moldau.Storage;

/// <summary>The few Linux calls .NET has no API for: a directory fsync, O_DIRECT, fallocate, fcntl record locks, syncfs.</summary>
internal static partial class Libc
{
    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "syncfs", SetLastError = true)]
    public static partial int Syncfs(int fd);

    [LibraryImport("libc", EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static unsafe partial int Statx(int dirFd, string path, int flags, uint mask, byte* buffer);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    public static partial int Fallocate(int fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, ref FileLockRange range);

    /// <summary>
    /// Linux's <c>struct flock</c> on 64-bit targets: l_type and l_whence (shorts), padding,
    /// l_start and l_len (off_t), l_pid (int), padding; 32 bytes.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct FileLockRange
    {
        public short Type;
        public short Whence;
        public long Start;
        public long Length;
        public int Pid;
    }
}
