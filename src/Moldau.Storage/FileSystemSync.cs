using System.Runtime.InteropServices;

namespace Moldau.Storage;

/// <summary>
/// One <c>syncfs(2)</c> per file system among the log dirs: what a clean stop does instead of an
/// fsync per file. Each log dir's directory is opened when the log manager starts and kept open,
/// because <c>syncfs</c> reports a write-back error (since Linux 5.8, through the file system's
/// error sequence) only to descriptors opened before the error happened: a page that failed to
/// reach the disk while the broker ran, whichever file it belonged to and whether or not that
/// file is still open, makes the stop's sync fail, and the log dir gets no clean-shutdown marker.
/// </summary>
/// <remarks>
/// Before Linux 5.8 <c>syncfs</c> returned 0 whatever happened; there (and on other systems)
/// <see cref="Supported"/> is false and a clean stop fsyncs each file as before.
/// </remarks>
internal sealed class FileSystemSync : IDisposable
{
    private const int ReadOnlyDirectory = 0x10000 | 0x80000; // O_RDONLY | O_DIRECTORY | O_CLOEXEC on Linux
    private const int EmptyPath = 0x1000; // AT_EMPTY_PATH
    private const int StatxSize = 256;
    private const int DevMajorOffset = 136; // struct statx: stx_dev_major, then stx_dev_minor
    private const uint StatxType = 1; // STATX_TYPE: the device fields come with any mask

    // Per log dir (as given): its open directory, or -1 where it could not be opened (missing).
    private readonly Dictionary<string, int> _handles = new(StringComparer.Ordinal);
    private readonly FileLayer? _files;

    /// <summary>Opens each of <paramref name="logDirs"/> that exists, so that its descriptor sees later write-back errors.</summary>
    public FileSystemSync(IEnumerable<string> logDirs, FileLayer? files)
    {
        _files = files;
        foreach (var logDir in logDirs)
        {
            _handles[logDir] = Supported ? Libc.Open(logDir, ReadOnlyDirectory, 0) : -1;
        }
    }

    /// <summary>
    /// Whether a clean stop may rely on <c>syncfs</c>: Linux 5.8 or later, where it reports
    /// write-back errors (before, it always returned 0).
    /// </summary>
    public static bool Supported { get; } = OperatingSystem.IsLinux() && Environment.OSVersion.Version >= new Version(5, 8);

    /// <summary>
    /// Syncs each distinct file system holding one of the log dirs, once. Returns, per log dir, null
    /// when everything written to its file system so far is on disk, else why not (the caller writes
    /// no clean-shutdown marker there). A test's file-layer observer refusing the log dir fails it.
    /// </summary>
    public Dictionary<string, Exception?> SyncAll()
    {
        var results = new Dictionary<string, Exception?>(StringComparer.Ordinal);
        var byDevice = new Dictionary<ulong, List<string>>();
        foreach (var logDir in _handles.Keys.ToList())
        {
            if (_handles[logDir] < 0 && Directory.Exists(logDir))
            {
                // Made after the start (nothing in it can have failed write-back unseen before now).
                _handles[logDir] = Libc.Open(logDir, ReadOnlyDirectory, 0);
            }

            if (_handles[logDir] < 0)
            {
                results[logDir] = new IOException($"open of {logDir} failed (errno {Marshal.GetLastPInvokeError()})");
                continue;
            }

            var device = Device(_handles[logDir]);
            if (!byDevice.TryGetValue(device, out var dirs))
            {
                byDevice[device] = dirs = [];
            }

            dirs.Add(logDir);
        }

        // One file system at a time would wait for each in turn; they are independent.
        var groups = byDevice.Values.ToList();
        var errors = new Exception?[groups.Count];
        Parallel.For(0, groups.Count, i => errors[i] = Sync(groups[i]));
        for (var i = 0; i < groups.Count; i++)
        {
            foreach (var logDir in groups[i])
            {
                results[logDir] = errors[i];
            }
        }

        return results;
    }

    /// <summary>One <c>syncfs</c> through the first of the log dirs on one file system (opened at the start, so it sees every error since).</summary>
    private Exception? Sync(List<string> logDirs)
    {
        var logDir = logDirs[0];
        try
        {
            _files?.BeforeWrite(logDir);
            if (Libc.Syncfs(_handles[logDir]) != 0)
            {
                return new IOException($"syncfs of the file system holding {logDir} failed (errno {Marshal.GetLastPInvokeError()})");
            }

            foreach (var dir in logDirs)
            {
                _files?.FileSystemSynced(dir);
            }

            return null;
        }
        catch (IOException e)
        {
            return e;
        }
    }

    /// <summary>The device number of the file system holding the open directory (statx's, the same on every architecture).</summary>
    private static unsafe ulong Device(int fd)
    {
        var buffer = stackalloc byte[StatxSize];
        if (Libc.Statx(fd, string.Empty, EmptyPath, StatxType, buffer) != 0)
        {
            return (uint)fd | (1UL << 63); // unknown: a group of its own
        }

        return ((ulong)*(uint*)(buffer + DevMajorOffset) << 32) | *(uint*)(buffer + DevMajorOffset + 4);
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var fd in _handles.Values.Where(fd => fd >= 0))
        {
            _ = Libc.Close(fd);
        }

        _handles.Clear();
    }
}
