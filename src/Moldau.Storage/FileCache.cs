using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>
/// The open files of one <see cref="StorageRuntime"/>, under a budget of descriptors
/// (<c>moldau.log.open.files.max</c>): a file is opened when first used, and cold ones are closed
/// when more than the budget are open, to be reopened by their next use. A file in use (leased) is
/// never closed under its user; while every open file is leased the budget is exceeded rather than
/// an operation failed. The partition count is then bounded by disk and memory, not by the
/// process's open-file limit. Segment data read and written with <c>O_DIRECT</c> has a file of its
/// own here (<see cref="Add"/> with <c>direct</c>), reopened with <c>O_DIRECT</c>.
/// </summary>
/// <remarks>
/// A lease of a file that is open takes no lock: one compare-and-swap on the file's lease count
/// (which holds a "not open" bit), one decrement to end it, and a "used" mark. Opening, closing and
/// eviction take the cache's lock. Which file to close is chosen by the clock (second chance)
/// algorithm over a ring of the open files: a file used since the hand last passed it is passed
/// over once, so a lease needs no reordering of a shared list. Closing a file sets its "not open"
/// bit with a compare-and-swap from zero leases, so it and a new lease can't both succeed.
/// </remarks>
internal sealed partial class FileCache : IDisposable
{
    /// <summary>The smallest budget, whatever the limit: a few partitions' files stay open.</summary>
    public const int MinimumBudget = 16;

    private readonly Lock _lock = new();
    private CachedFile? _hand;
    private int _openCount;
    private int _disposed;

    /// <summary>A cache that keeps at most <paramref name="budget"/> files open (at least <see cref="MinimumBudget"/>).</summary>
    public FileCache(int budget) => Budget = Math.Max(MinimumBudget, budget);

    /// <summary>The number of files kept open at most (while none of them is in use).</summary>
    public int Budget { get; }

    /// <summary>Files open now.</summary>
    public int OpenCount => Volatile.Read(ref _openCount);

    /// <summary>Files closed to keep within the budget since the cache was made.</summary>
    public long Evictions { get; private set; }

    /// <summary>Files opened again after the cache closed them, since it was made.</summary>
    public long Reopens { get; private set; }

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
    /// read and write (with <paramref name="direct"/>, <c>O_DIRECT</c> through
    /// <see cref="DirectIo.OpenExisting"/>): the file must exist, and is neither created nor cut.
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="handle">Its handle, open now, or null.</param>
    /// <param name="direct">Whether reopening uses <c>O_DIRECT</c>.</param>
    /// <param name="onClosed">Called whenever the cache closes the handle (under its lock, no lease out).</param>
    public CachedFile Add(string path, SafeFileHandle? handle, bool direct = false, Action? onClosed = null)
    {
        var file = new CachedFile(this, path, direct) { OnClosed = onClosed };
        if (handle is not null)
        {
            lock (_lock)
            {
                file.Handle = handle;
                file.Used = true;
                InsertLocked(file);
                Volatile.Write(ref file.State, 0);
                EvictColdLocked();
            }
        }

        return file;
    }

    /// <summary>The file's handle for one use, opened if the cache closed it; dispose the lease after the use.</summary>
    public FileLease Lease(CachedFile file)
    {
        // The common case, a file open: one compare-and-swap, no lock.
        var state = Volatile.Read(ref file.State);
        while ((state & CachedFile.NotOpen) == 0)
        {
            var seen = Interlocked.CompareExchange(ref file.State, state + 1, state);
            if (seen == state)
            {
                if (!file.Used)
                {
                    file.Used = true;
                }

                return new FileLease(file, file.Handle!);
            }

            state = seen;
        }

        return LeaseClosed(file);
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
            var count = _openCount;
            for (var i = 0; i < count && _hand is { } file; i++)
            {
                _hand = file.Next;
                if (file.TryShut())
                {
                    CloseLocked(file);
                }
            }
        }
    }

    internal void Release(CachedFile file)
    {
        // The lock only when the file is to close, or the cache is over its budget.
        if (Interlocked.Decrement(ref file.State) == 0 && (file.Closed || Volatile.Read(ref _openCount) > Budget))
        {
            lock (_lock)
            {
                if (file.Closed)
                {
                    if (file.TryShut())
                    {
                        CloseLocked(file);
                    }
                }
                else
                {
                    EvictColdLocked();
                }
            }
        }
    }

    internal void Close(CachedFile file)
    {
        lock (_lock)
        {
            // A lease still out closes the file when it ends (Release sees Closed).
            file.Closed = true;
            if (file.TryShut())
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

    private FileLease LeaseClosed(CachedFile file)
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(file.Closed, file);
            if ((Volatile.Read(ref file.State) & CachedFile.NotOpen) != 0)
            {
                // Only here (under the lock) does a file leave the "not open" state.
                file.Handle = file.Direct
                    ? DirectIo.OpenExisting(file.Path)
                    : File.OpenHandle(file.Path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
                if (file.WasOpen)
                {
                    Reopens++;
                }

                InsertLocked(file);
                Volatile.Write(ref file.State, 1);
                EvictColdLocked();
            }
            else
            {
                Interlocked.Increment(ref file.State);
            }

            file.Used = true;
            return new FileLease(file, file.Handle!);
        }
    }

    private void EvictColdLocked()
    {
        // The clock: a file used since the hand last passed is passed over once; a leased one is
        // passed over (two turns of the ring at most, so files all leased end the scan).
        for (var steps = 2 * _openCount; _openCount > Budget && steps > 0 && _hand is { } file; steps--)
        {
            _hand = file.Next;
            if (file.Used)
            {
                file.Used = false;
            }
            else if (file.TryShut())
            {
                CloseLocked(file);
                Evictions++;
            }
        }
    }

    // Called with the file shut (no lease, "not open" set): no user can see its handle.
    private void CloseLocked(CachedFile file)
    {
        if (file.Handle is { } handle)
        {
            RemoveLocked(file);
            file.Handle = null;
            handle.Dispose();
            file.OnClosed?.Invoke();
        }
    }

    // Into the ring of open files, just behind the hand: the last the clock reaches.
    private void InsertLocked(CachedFile file)
    {
        if (_hand is not { } hand)
        {
            file.Next = file;
            file.Previous = file;
            _hand = file;
        }
        else
        {
            file.Next = hand;
            file.Previous = hand.Previous;
            hand.Previous!.Next = file;
            hand.Previous = file;
        }

        file.WasOpen = true;
        Volatile.Write(ref _openCount, _openCount + 1);
    }

    private void RemoveLocked(CachedFile file)
    {
        if (file.Next == file)
        {
            _hand = null;
        }
        else
        {
            file.Previous!.Next = file.Next;
            file.Next!.Previous = file.Previous;
            if (_hand == file)
            {
                _hand = file.Next;
            }
        }

        file.Next = null;
        file.Previous = null;
        Volatile.Write(ref _openCount, _openCount - 1);
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
    /// <summary>The bit of <see cref="State"/> set while the file has no handle (or is being closed).</summary>
    internal const int NotOpen = 1 << 30;

    /// <summary>The leases out, and <see cref="NotOpen"/>; changed by compare-and-swap (see <see cref="FileCache"/>).</summary>
    internal int State = NotOpen;

    private readonly FileCache _cache;

    internal CachedFile(FileCache cache, string path, bool direct)
    {
        _cache = cache;
        Path = path;
        Direct = direct;
    }

    /// <summary>The file's path (it follows a rename).</summary>
    public string Path { get; internal set; }

    /// <summary>Whether the file is open now.</summary>
    public bool IsOpen => Handle is not null;

    /// <summary>Whether the file is opened with <c>O_DIRECT</c>.</summary>
    public bool Direct { get; }

    /// <summary>Called, under the cache's lock and with no lease out, when the handle is closed.</summary>
    internal Action? OnClosed { get; set; }

    internal SafeFileHandle? Handle { get; set; }

    // The ring of open files, and the clock's mark (see FileCache).
    internal CachedFile? Next { get; set; }

    internal CachedFile? Previous { get; set; }

    internal bool Used { get; set; }

    internal bool WasOpen { get; set; }

    internal volatile bool Closed;

    /// <summary>The handle for one use; see <see cref="FileCache.Lease"/>.</summary>
    public FileLease Lease() => _cache.Lease(this);

    /// <summary>Ends one lease.</summary>
    internal void LeaseEnded() => _cache.Release(this);

    /// <summary>The file was renamed to <paramref name="path"/>: a reopen opens it there.</summary>
    public void Renamed(string path) => _cache.Rename(this, path);

    /// <summary>Closes the file for good (once its current users are done).</summary>
    public void Dispose() => _cache.Close(this);

    /// <summary>From no lease to "not open": true when the file was open and no lease can start on it now.</summary>
    internal bool TryShut() => Interlocked.CompareExchange(ref State, NotOpen, 0) == 0;
}

/// <summary>A file's handle for one use: it stays open until the lease is disposed.</summary>
internal readonly struct FileLease(CachedFile file, SafeFileHandle handle) : IDisposable
{
    /// <summary>The open handle.</summary>
    public SafeFileHandle Handle { get; } = handle;

    /// <inheritdoc/>
    public void Dispose() => file?.LeaseEnded();
}
