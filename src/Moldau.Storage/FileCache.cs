using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>
/// The open files of one <see cref="StorageRuntime"/>, under a budget of descriptors
/// (<c>moldau.log.open.files.max</c>): a file is opened when first used, and the least recently
/// used ones are closed when more than the budget are open, to be reopened by their next use. A
/// file in use (leased) is never closed under its user; while every open file is leased the budget
/// is exceeded rather than an operation failed. The partition count is then bounded by disk and
/// memory, not by the process's open-file limit.
/// </summary>
internal sealed partial class FileCache : IDisposable
{
    /// <summary>The smallest budget, whatever the limit: a few partitions' files stay open.</summary>
    public const int MinimumBudget = 16;

    private readonly Lock _lock = new();
    private readonly LinkedList<CachedFile> _open = [];
    private int _disposed;

    /// <summary>A cache that keeps at most <paramref name="budget"/> files open (at least <see cref="MinimumBudget"/>).</summary>
    public FileCache(int budget) => Budget = Math.Max(MinimumBudget, budget);

    /// <summary>The number of files kept open at most (while none of them is in use).</summary>
    public int Budget { get; }

    /// <summary>Files open now.</summary>
    public int OpenCount
    {
        get
        {
            lock (_lock)
            {
                return _open.Count;
            }
        }
    }

    /// <summary>Files closed to keep within the budget since the cache was made.</summary>
    public long Evictions { get; private set; }

    /// <summary>
    /// The budget a broker gets for <paramref name="configured"/> (the key's value): the value
    /// itself when positive, else half the process's soft open-file limit (the other half for
    /// connections and everything else), at least <see cref="MinimumBudget"/>.
    /// </summary>
    public static int BudgetFor(int configured)
    {
        if (configured > 0)
        {
            return Math.Max(MinimumBudget, configured);
        }

        var limit = SoftOpenFileLimit();
        return limit <= 0 ? 4096 : (int)Math.Clamp(limit / 2, MinimumBudget, int.MaxValue);
    }

    /// <summary>The process's soft RLIMIT_NOFILE, or -1 where it can't be read.</summary>
    public static long SoftOpenFileLimit()
    {
        if (!OperatingSystem.IsLinux())
        {
            return -1;
        }

        const int RlimitNofile = 7;
        var limit = default(RLimit);
        return GetRlimit(RlimitNofile, ref limit) == 0 ? (long)Math.Min(limit.Current, long.MaxValue) : -1;
    }

    /// <summary>
    /// A file of the cache at <paramref name="path"/>, already open as <paramref name="handle"/>
    /// (or closed, when null: opened by its first use). Reopening uses <see cref="FileMode.Open"/>,
    /// read and write: the file must exist.
    /// </summary>
    public CachedFile Add(string path, SafeFileHandle? handle)
    {
        var file = new CachedFile(this, path);
        if (handle is not null)
        {
            lock (_lock)
            {
                file.Handle = handle;
                _open.AddFirst(file.Node);
                EvictColdLocked();
            }
        }

        return file;
    }

    /// <summary>The file's handle for one use, opened if the cache closed it; dispose the lease after the use.</summary>
    public FileLease Lease(CachedFile file)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(file.Closed, file);
            if (file.Handle is null)
            {
                file.Handle = File.OpenHandle(file.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
                _open.AddFirst(file.Node);
            }
            else if (file.Node.Previous is not null)
            {
                _open.Remove(file.Node);
                _open.AddFirst(file.Node);
            }

            file.Leases++;
            EvictColdLocked();
            return new FileLease(file, file.Handle);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        // Files closed here reopen on their next use: a log closed after its runtime still closes.
        lock (_lock)
        {
            while (_open.Last is { } last)
            {
                if (last.Value.Leases > 0)
                {
                    break;
                }

                CloseLocked(last.Value);
            }
        }
    }

    internal void Release(CachedFile file)
    {
        lock (_lock)
        {
            file.Leases--;
            if (file.Leases == 0 && file.Closed)
            {
                CloseLocked(file);
            }
            else
            {
                EvictColdLocked();
            }
        }
    }

    internal void Close(CachedFile file)
    {
        lock (_lock)
        {
            file.Closed = true;
            if (file.Leases == 0)
            {
                CloseLocked(file);
            }
        }
    }

    internal void Rename(CachedFile file, string path)
    {
        lock (_lock)
        {
            file.Path = path;
        }
    }

    private void EvictColdLocked()
    {
        // From the least recently used end, passing over files in use.
        var node = _open.Last;
        while (_open.Count > Budget && node is not null)
        {
            var previous = node.Previous;
            if (node.Value.Leases == 0)
            {
                CloseLocked(node.Value);
                Evictions++;
            }

            node = previous;
        }
    }

    private void CloseLocked(CachedFile file)
    {
        if (file.Handle is { } handle)
        {
            _open.Remove(file.Node);
            file.Handle = null;
            handle.Dispose();
        }
    }

    [LibraryImport("libc", EntryPoint = "getrlimit", SetLastError = true)]
    private static partial int GetRlimit(int resource, ref RLimit limit);

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }
}

/// <summary>One file of a <see cref="FileCache"/>: open or closed, reopened on use.</summary>
internal sealed class CachedFile : IDisposable
{
    private readonly FileCache _cache;

    internal CachedFile(FileCache cache, string path)
    {
        _cache = cache;
        Path = path;
        Node = new LinkedListNode<CachedFile>(this);
    }

    /// <summary>The file's path (it follows a rename).</summary>
    public string Path { get; internal set; }

    /// <summary>Whether the file is open now.</summary>
    public bool IsOpen => Handle is not null;

    internal LinkedListNode<CachedFile> Node { get; }

    internal SafeFileHandle? Handle { get; set; }

    internal int Leases { get; set; }

    internal bool Closed { get; set; }

    /// <summary>The handle for one use; see <see cref="FileCache.Lease"/>.</summary>
    public FileLease Lease() => _cache.Lease(this);

    /// <summary>Ends one lease.</summary>
    internal void LeaseEnded() => _cache.Release(this);

    /// <summary>The file was renamed to <paramref name="path"/>: a reopen opens it there.</summary>
    public void Renamed(string path) => _cache.Rename(this, path);

    /// <summary>Closes the file for good (once its current users are done).</summary>
    public void Dispose() => _cache.Close(this);
}

/// <summary>A file's handle for one use: it stays open until the lease is disposed.</summary>
internal readonly struct FileLease(CachedFile file, SafeFileHandle handle) : IDisposable
{
    /// <summary>The open handle.</summary>
    public SafeFileHandle Handle { get; } = handle;

    /// <inheritdoc/>
    public void Dispose() => file?.LeaseEnded();
}
