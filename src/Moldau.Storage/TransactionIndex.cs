using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace Moldau.Storage;

/// <summary>One entry of a <c>.txnindex</c> file: a transaction that ended with an ABORT marker in the segment.</summary>
/// <param name="ProducerId">The producer.</param>
/// <param name="FirstOffset">The transaction's first offset (perhaps in an earlier segment).</param>
/// <param name="LastOffset">The ABORT marker's offset.</param>
/// <param name="LastStableOffset">The first offset still undecided when the marker was written (see <see cref="CompletedTxn"/>).</param>
internal readonly record struct AbortedTxnEntry(long ProducerId, long FirstOffset, long LastOffset, long LastStableOffset);

/// <summary>
/// A segment's transaction index, Kafka's <c>&lt;base offset&gt;.txnindex</c>: the transactions whose
/// ABORT marker lies in the segment, in marker order, 34 bytes each. The file exists only once the
/// segment holds an ABORT marker (as in Kafka), is opened through the runtime's
/// <see cref="FileCache"/> when used, and is read into memory on first use.
/// </summary>
/// <remarks>
/// <code>
/// version            int16   0
/// producer_id        int64
/// first_offset       int64   the transaction's first offset in the partition
/// last_offset        int64   the ABORT marker's offset
/// last_stable_offset int64   the first undecided offset once the marker was written
/// </code>
/// Big-endian, back to back, no header (Kafka's <c>AbortedTxn</c>). Entries are added by the log's
/// one appending thread; lookups run concurrently under the entry list's lock. Like the other
/// index files it is a start-up shortcut: recovery rebuilds it from the markers in the segment.
/// </remarks>
internal sealed class TransactionIndex : IDisposable
{
    /// <summary>Bytes of one entry.</summary>
    public const int EntrySize = 2 + 8 + 8 + 8 + 8;

    private readonly FileCache _cache;
    private readonly FileLayer _files;
    private CachedFile? _file; // null until the file exists
    private List<AbortedTxnEntry>? _entries; // null until read; also the lock
    private readonly Lock _load = new();
    private bool _broken;
    private volatile bool _unsynced;
    private string? _renamed;

    /// <summary>The index of the segment at <paramref name="logPath"/>; <paramref name="exists"/> when its file is on disk.</summary>
    public TransactionIndex(string logPath, StorageRuntime runtime, bool exists)
    {
        Path = PathOf(logPath);
        _cache = runtime.OpenFiles;
        _files = runtime.Files;
        if (exists)
        {
            _file = _cache.Add(Path, null); // opened by its first use
        }
        else
        {
            _entries = [];
        }
    }

    /// <summary>The file's path.</summary>
    public string Path { get; }

    /// <summary>The <c>.txnindex</c> path beside a segment's <c>.log</c>.</summary>
    public static string PathOf(string logPath) => System.IO.Path.ChangeExtension(logPath, ".txnindex");

    /// <summary>Whether the file is on disk (the segment holds an ABORT marker, or held one when written).</summary>
    public bool FileExists => Volatile.Read(ref _file) is not null;

    /// <summary>The entries, oldest marker first (read from the file on first use).</summary>
    public IReadOnlyList<AbortedTxnEntry> Entries
    {
        get
        {
            var entries = Loaded();
            lock (entries)
            {
                return [.. entries];
            }
        }
    }

    /// <summary>
    /// Adds an entry (the appending thread only): in memory, then at the file's end. Returns true
    /// when the file was created by it (its directory entry wants a sync). A failed write is left
    /// for <see cref="Flush"/> to redo whole; an entry whose marker is not after the last one is ignored,
    /// as Kafka refuses it.
    /// </summary>
    public bool Append(AbortedTxnEntry entry)
    {
        var entries = Loaded();
        int count;
        lock (entries)
        {
            if (entries.Count > 0 && entries[^1].LastOffset >= entry.LastOffset)
            {
                return false;
            }

            entries.Add(entry);
            count = entries.Count;
        }

        var created = false;
        try
        {
            if (Volatile.Read(ref _file) is not { } file)
            {
                _files.BeforeWrite(Path);
                var handle = File.OpenHandle(Path, FileMode.Create, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
                _files.Created(Path);
                file = _cache.Add(Path, handle);
                Volatile.Write(ref _file, file);
                created = true;
                if (count > 1)
                {
                    _broken = true; // entries from before a failed create: all written by the next flush
                    return created;
                }
            }

            Span<byte> bytes = stackalloc byte[EntrySize];
            Write(bytes, entry);
            _unsynced = true;
            _files.BeforeWrite(Path);
            using var lease = file.Lease();
            RandomAccess.Write(lease.Handle, bytes, (long)(count - 1) * EntrySize);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The marker is in the log; the index is redone whole by the next flush, or rebuilt
            // from the segment by recovery (Kafka leaves the same inconsistency to recovery).
            _broken = true;
        }

        return created;
    }

    /// <summary>
    /// Kafka's <c>collectAbortedTxns</c> over this segment: adds to <paramref name="found"/> (made
    /// when needed) every entry whose marker is at or after <paramref name="fetchOffset"/> and whose
    /// first offset is below <paramref name="upperBoundOffset"/>; true when an entry's last stable
    /// offset reaches the bound, so no later segment can hold more.
    /// </summary>
    public bool Collect(long fetchOffset, long upperBoundOffset, ref List<AbortedTransaction>? found)
    {
        var entries = Loaded();
        lock (entries)
        {
            foreach (var e in entries)
            {
                if (e.LastOffset >= fetchOffset && e.FirstOffset < upperBoundOffset)
                {
                    (found ??= []).Add(new AbortedTransaction(e.ProducerId, e.FirstOffset));
                }

                if (e.LastStableOffset >= upperBoundOffset)
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Drops the entries whose marker is at or after <paramref name="offset"/> (a segment cut back by recovery).</summary>
    public void TruncateTo(long offset)
    {
        var entries = Loaded();
        lock (entries)
        {
            if (entries.RemoveAll(e => e.LastOffset >= offset) == 0)
            {
                return;
            }
        }

        _broken = true; // rewritten whole by the next flush
    }

    /// <summary>
    /// fsync of the file when written since the last one, rewritten whole first after a failed
    /// write; without <paramref name="sync"/> (a clean stop syncs the file system after) only the rewrite.
    /// </summary>
    public void Flush(bool sync = true)
    {
        if (Volatile.Read(ref _file) is not { } file || (!_unsynced && !_broken))
        {
            return;
        }

        if (_broken)
        {
            var entries = Loaded();
            byte[] bytes;
            lock (entries)
            {
                bytes = new byte[entries.Count * EntrySize];
                for (var i = 0; i < entries.Count; i++)
                {
                    Write(bytes.AsSpan(i * EntrySize), entries[i]);
                }
            }

            _files.BeforeWrite(Path);
            using var lease = file.Lease();
            RandomAccess.SetLength(lease.Handle, bytes.Length);
            RandomAccess.Write(lease.Handle, bytes, 0);
            _broken = false;
            _unsynced = true;
        }

        if (!sync)
        {
            return;
        }

        _unsynced = false;
        try
        {
            _files.BeforeWrite(Path);
            using var lease = file.Lease();
            var length = _files.Observer is null ? 0 : RandomAccess.GetLength(lease.Handle);
            RandomAccess.FlushToDisk(lease.Handle);
            _files.Synced(Path, length);
        }
        catch
        {
            _unsynced = true;
            throw;
        }
    }

    /// <summary>The segment was retired: the file (if any) is renamed to <paramref name="renamed"/>.</summary>
    public void MoveTo(string renamed)
    {
        if (Volatile.Read(ref _file) is not { } file)
        {
            return;
        }

        try
        {
            File.Move(Path, renamed, overwrite: true);
            _renamed = renamed;
            file.Renamed(renamed);
        }
        catch (IOException)
        {
            // As for the other files of a retired segment: renaming is a courtesy for restarts.
        }
    }

    /// <summary>Closes the file and removes it (at its retired name when it was renamed).</summary>
    public void DisposeAndDelete()
    {
        Dispose();
        if (FileExists || _renamed is not null)
        {
            File.Delete(_renamed ?? Path);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Volatile.Read(ref _file)?.Dispose();

    /// <summary>Reads an index file's entries: whole 34-byte version-0 entries, up to the first that is not.</summary>
    public static List<AbortedTxnEntry> Parse(ReadOnlySpan<byte> bytes)
    {
        var entries = new List<AbortedTxnEntry>(bytes.Length / EntrySize);
        for (var at = 0; at + EntrySize <= bytes.Length; at += EntrySize)
        {
            var e = bytes.Slice(at, EntrySize);
            if (BinaryPrimitives.ReadInt16BigEndian(e) != 0)
            {
                break; // a version Kafka does not write
            }

            var entry = new AbortedTxnEntry(
                BinaryPrimitives.ReadInt64BigEndian(e[2..]),
                BinaryPrimitives.ReadInt64BigEndian(e[10..]),
                BinaryPrimitives.ReadInt64BigEndian(e[18..]),
                BinaryPrimitives.ReadInt64BigEndian(e[26..]));
            if (entry.FirstOffset < 0 || entry.LastOffset < entry.FirstOffset || (entries.Count > 0 && entry.LastOffset <= entries[^1].LastOffset))
            {
                break; // not an entry Kafka writes, or not after the one before: the rest can't be trusted
            }

            entries.Add(entry);
        }

        return entries;
    }

    /// <summary>Writes one entry in Kafka's layout.</summary>
    public static void Write(Span<byte> destination, AbortedTxnEntry entry)
    {
        BinaryPrimitives.WriteInt16BigEndian(destination, 0);
        BinaryPrimitives.WriteInt64BigEndian(destination[2..], entry.ProducerId);
        BinaryPrimitives.WriteInt64BigEndian(destination[10..], entry.FirstOffset);
        BinaryPrimitives.WriteInt64BigEndian(destination[18..], entry.LastOffset);
        BinaryPrimitives.WriteInt64BigEndian(destination[26..], entry.LastStableOffset);
    }

    private List<AbortedTxnEntry> Loaded()
    {
        if (Volatile.Read(ref _entries) is { } entries)
        {
            return entries;
        }

        lock (_load)
        {
            if (_entries is { } loaded)
            {
                return loaded;
            }

            List<AbortedTxnEntry> read;
            try
            {
                using var lease = _file!.Lease();
                read = Parse(ReadAll(lease.Handle));
            }
            catch (FileNotFoundException)
            {
                read = [];
            }

            Volatile.Write(ref _entries, read);
            return read;
        }
    }

    private static byte[] ReadAll(SafeFileHandle handle)
    {
        var bytes = new byte[RandomAccess.GetLength(handle)];
        var done = 0;
        while (done < bytes.Length)
        {
            var n = RandomAccess.Read(handle, bytes.AsSpan(done), done);
            if (n == 0)
            {
                break;
            }

            done += n;
        }

        return bytes[..done];
    }
}
