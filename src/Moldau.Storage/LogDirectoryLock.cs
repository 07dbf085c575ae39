using System.Runtime.InteropServices;

namespace Moldau.Storage;

/// <summary>
/// Kafka's <c>.lock</c> file in a log dir: an exclusive fcntl record lock on it is held for as long
/// as the broker runs, so that a second broker (Moldau or Kafka) on the same directory is refused
/// before it writes anything. The kernel drops the lock when the process exits, kill -9 included.
/// </summary>
/// <remarks>
/// Kafka takes it with <c>FileChannel.tryLock</c>, which on Linux is a POSIX record lock
/// (<c>fcntl(F_SETLK)</c>) over the whole file. An open-file-description lock
/// (<c>F_OFD_SETLK</c>) conflicts with those, and also with a second lock taken inside the same
/// process (a POSIX lock would not: it belongs to the process); kernels older than 3.15 get the
/// POSIX lock. flock(2) would not exclude Kafka: Linux keeps the two kinds apart.
/// </remarks>
public sealed class LogDirectoryLock : IDisposable
{
    /// <summary>The lock file's name, as Kafka names it.</summary>
    public const string FileName = ".lock";

    private const int ReadWriteCreateCloseOnExec = 0x2 | 0x40 | 0x80000; // O_RDWR | O_CREAT | O_CLOEXEC
    private const int SetLock = 6; // F_SETLK
    private const int SetOpenFileDescriptionLock = 37; // F_OFD_SETLK
    private const short WriteLock = 1; // F_WRLCK
    private const int TryAgain = 11; // EAGAIN
    private const int AccessDenied = 13; // EACCES
    private const int InvalidArgument = 22; // EINVAL

    private int _fd;
    private FileStream? _stream;

    private LogDirectoryLock(string directory, int fd)
    {
        Directory = directory;
        _fd = fd;
    }

    /// <summary>The log dir this lock holds.</summary>
    public string Directory { get; }

    /// <summary>
    /// Creates (if need be) and locks <c>.lock</c> in <paramref name="directory"/>, which must exist.
    /// Throws <see cref="LogDirectoryInUseException"/> when another process (or another broker in
    /// this one) holds it, and <see cref="IOException"/> when the file can't be opened.
    /// </summary>
    public static LogDirectoryLock Acquire(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!OperatingSystem.IsLinux())
        {
            // Elsewhere the lock is .NET's own (flock on Unix, a sharing mode on Windows).
            try
            {
                var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
                return new LogDirectoryLock(directory, -1) { _stream = stream };
            }
            catch (IOException e) when (File.Exists(path))
            {
                throw new LogDirectoryInUseException(directory, e);
            }
        }

        var fd = Libc.Open(path, ReadWriteCreateCloseOnExec, Convert.ToInt32("644", 8));
        if (fd < 0)
        {
            throw new IOException($"cannot open {path} (errno {Marshal.GetLastPInvokeError()})");
        }

        var range = new Libc.FileLockRange { Type = WriteLock, Whence = 0, Start = 0, Length = 0, Pid = 0 };
        var result = Libc.Fcntl(fd, SetOpenFileDescriptionLock, ref range);
        var errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
        if (errno == InvalidArgument)
        {
            range = new Libc.FileLockRange { Type = WriteLock };
            result = Libc.Fcntl(fd, SetLock, ref range);
            errno = result == 0 ? 0 : Marshal.GetLastPInvokeError();
        }

        if (result == 0)
        {
            return new LogDirectoryLock(directory, fd);
        }

        _ = Libc.Close(fd);
        if (errno is TryAgain or AccessDenied)
        {
            throw new LogDirectoryInUseException(directory, null);
        }

        throw new IOException($"cannot lock {path} (errno {errno})");
    }

    /// <summary>Releases the lock (closing the file); the file itself stays, as Kafka leaves it.</summary>
    public void Dispose()
    {
        _stream?.Dispose();
        var fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0)
        {
            _ = Libc.Close(fd);
        }
    }
}

/// <summary>A log dir whose <c>.lock</c> another process (or broker) holds.</summary>
public sealed class LogDirectoryInUseException(string directory, Exception? inner)
    : IOException($"log dir {directory} is in use by another process", inner)
{
    /// <summary>The log dir.</summary>
    public string Directory { get; } = directory;
}
