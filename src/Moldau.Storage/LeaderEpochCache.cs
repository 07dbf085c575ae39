using System.Globalization;
using System.Text;

namespace Moldau.Storage;

/// <summary>The first offset written in a leader epoch.</summary>
/// <param name="Epoch">The leader epoch.</param>
/// <param name="StartOffset">The offset of its first batch (or the log end when the epoch began).</param>
public readonly record struct EpochEntry(int Epoch, long StartOffset);

/// <summary>
/// A partition's leader epochs and where each starts, kept in memory and in
/// <c>&lt;partition dir&gt;/leader-epoch-checkpoint</c> as Kafka keeps it:
/// <code>
/// 0          version
/// 2          number of entries
/// 0 0        epoch, start offset (epochs and offsets increasing)
/// 4 1500
/// </code>
/// OffsetForLeaderEpoch (KIP-320) is answered from it, so it never reads the log. The file is
/// rewritten (temporary file, fsync, rename) whenever an epoch starts or entries are dropped; a new
/// log's is first written at the log's first flush (<see cref="Deferred"/>).
/// </summary>
public sealed class LeaderEpochCache
{
    /// <summary>The file's name in the partition directory.</summary>
    public const string FileName = "leader-epoch-checkpoint";

    // The partition directory (the log's own string), or null in memory: the file's path is made
    // when it is written, rarely, rather than kept (about 190 B per partition).
    private readonly string? _directory;
    private readonly Lock _lock = new();

    // Copy on write: readers take the array as it is, writers replace it under the lock.
    private EpochEntry[] _entries;

    // A new log's file waits for the log's first flush (WriteDeferred): until then it is kept in memory only.
    private bool _deferred;

    private LeaderEpochCache(string? directory, EpochEntry[] entries)
    {
        _directory = directory;
        _entries = entries;
    }

    /// <summary>A cache with no file behind it (tests).</summary>
    public static LeaderEpochCache InMemory(IEnumerable<EpochEntry>? entries = null) => new(null, Monotonic(entries ?? []));

    /// <summary>
    /// The cache of <paramref name="directory"/> from its checkpoint file, or null when the file is
    /// missing or unreadable (the caller rebuilds it from the batch headers).
    /// </summary>
    public static LeaderEpochCache? Load(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        var entries = Parse(File.ReadAllText(path));
        return entries is null ? null : new LeaderEpochCache(directory, Monotonic(entries));
    }

    /// <summary>A cache for <paramref name="directory"/> holding <paramref name="entries"/>, written to its file now.</summary>
    public static LeaderEpochCache Create(string directory, IEnumerable<EpochEntry> entries)
    {
        var cache = new LeaderEpochCache(directory, Monotonic(entries));
        cache.Write(cache._entries);
        return cache;
    }

    /// <summary>
    /// An empty cache for a new log in <paramref name="directory"/> whose file is not written until
    /// <see cref="WriteDeferred"/> (the log's first flush): creating a partition costs no fsync for
    /// it. A crash before then leaves no file, and opening rebuilds the epochs from the batches
    /// that reached the disk, as for a log written before the file existed.
    /// </summary>
    public static LeaderEpochCache Deferred(string directory) =>
        new(directory, []) { _deferred = true };

    /// <summary>
    /// Writes the file (temporary file, fsync unless not <paramref name="sync"/>, rename) if it was deferred (<see cref="Deferred"/>),
    /// from then on written at every change; the caller syncs the directory after it. Returns
    /// whether it wrote the file.
    /// </summary>
    public bool WriteDeferred(bool sync = true)
    {
        lock (_lock)
        {
            if (!_deferred)
            {
                return false;
            }

            _deferred = false;
            try
            {
                Write(_entries, syncDirectory: false, syncFile: sync);
            }
            catch
            {
                _deferred = true;
                throw;
            }

            return true;
        }
    }

    /// <summary>The entries, oldest epoch first.</summary>
    public IReadOnlyList<EpochEntry> Entries => Volatile.Read(ref _entries);

    /// <summary>The newest epoch, or -1 when there is none.</summary>
    public int LatestEpoch => Volatile.Read(ref _entries) is { Length: > 0 } e ? e[^1].Epoch : -1;

    /// <summary>
    /// Records that <paramref name="epoch"/> starts at <paramref name="startOffset"/>. Nothing
    /// changes when that epoch is already known from an offset at or before it. Otherwise, as in
    /// Kafka, entries that would no longer be increasing (an epoch at or above it, or a start at
    /// or beyond it) are dropped first. Returns true when the file was rewritten.
    /// </summary>
    public bool Assign(int epoch, long startOffset)
    {
        if (epoch < 0)
        {
            return false; // batches without a leader epoch (-1) don't start one
        }

        lock (_lock)
        {
            var current = _entries;
            if (current.Length > 0 && current[^1].Epoch == epoch && current[^1].StartOffset <= startOffset)
            {
                return false;
            }

            var next = current.Where(e => e.Epoch < epoch && e.StartOffset < startOffset).Append(new EpochEntry(epoch, startOffset)).ToArray();
            return Replace(next);
        }
    }

    /// <summary>
    /// Drops the epochs that start at or beyond <paramref name="endOffset"/>: after the log was cut
    /// there, they hold nothing. Returns true when the file was rewritten.
    /// </summary>
    public bool TruncateFromEnd(long endOffset)
    {
        lock (_lock)
        {
            var current = _entries;
            if (current.Length == 0 || current[^1].StartOffset < endOffset)
            {
                return false;
            }

            var next = current.Where(e => e.StartOffset < endOffset).ToArray();
            return Replace(next);
        }
    }

    /// <summary>
    /// The log now starts at <paramref name="startOffset"/>: epochs that started before it are
    /// dropped, except the last of them, which now starts there (it still holds records). Returns
    /// true when the file was rewritten.
    /// </summary>
    public bool TruncateFromStart(long startOffset)
    {
        lock (_lock)
        {
            var current = _entries;
            var covered = Array.FindLastIndex(current, e => e.StartOffset <= startOffset);
            if (covered < 0 || (covered == 0 && current[0].StartOffset == startOffset))
            {
                return false;
            }

            var next = current[covered..];
            next[0] = next[0] with { StartOffset = startOffset };
            return Replace(next);
        }
    }

    /// <summary>
    /// OffsetForLeaderEpoch, as Kafka answers it: for the newest epoch, that epoch and the log end;
    /// for an older one, the largest known epoch at or below it and the start of the next epoch
    /// (for one older than every known epoch: the epoch asked for and the first start).
    /// (-1, -1) for epoch -1, an epoch newer than any known, or an empty cache.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetFor(int requestedEpoch, long logEndOffset)
    {
        var entries = Volatile.Read(ref _entries);
        if (requestedEpoch < 0 || entries.Length == 0)
        {
            return (-1, -1);
        }

        if (entries[^1].Epoch == requestedEpoch)
        {
            return (requestedEpoch, logEndOffset);
        }

        var higher = Array.FindIndex(entries, e => e.Epoch > requestedEpoch);
        if (higher < 0)
        {
            return (-1, -1);
        }

        return higher == 0 ? (requestedEpoch, entries[0].StartOffset) : (entries[higher - 1].Epoch, entries[higher].StartOffset);
    }

    /// <summary>The epoch that <paramref name="offset"/> was written in, or -1 when it is before every known epoch.</summary>
    public int EpochForOffset(long offset)
    {
        var entries = Volatile.Read(ref _entries);
        var found = -1;
        foreach (var e in entries)
        {
            if (e.StartOffset > offset)
            {
                break;
            }

            found = e.Epoch;
        }

        return found;
    }

    /// <summary>Kafka's text for <paramref name="entries"/>.</summary>
    public static string Format(IReadOnlyCollection<EpochEntry> entries)
    {
        var text = new StringBuilder();
        text.Append("0\n").Append(entries.Count.ToString(CultureInfo.InvariantCulture)).Append('\n');
        foreach (var e in entries)
        {
            text.Append(CultureInfo.InvariantCulture, $"{e.Epoch} {e.StartOffset}\n");
        }

        return text.ToString();
    }

    /// <summary>
    /// The entries of a checkpoint's text, or null when it is not version 0 or its entry count,
    /// or any entry, does not parse (Kafka refuses such a file too).
    /// </summary>
    public static List<EpochEntry>? Parse(string text)
    {
        var lines = text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (lines.Length < 2 || lines[0] != "0" || !int.TryParse(lines[1], CultureInfo.InvariantCulture, out var count) || count != lines.Length - 2)
        {
            return null;
        }

        var entries = new List<EpochEntry>(count);
        foreach (var line in lines.Skip(2))
        {
            var parts = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length != 2
                || !int.TryParse(parts[0], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var epoch)
                || !long.TryParse(parts[1], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var offset))
            {
                return null;
            }

            entries.Add(new EpochEntry(epoch, offset));
        }

        return entries;
    }

    /// <summary>Keeps the entries increasing in both epoch and start offset, a later entry winning, as assigning them in turn would.</summary>
    private static EpochEntry[] Monotonic(IEnumerable<EpochEntry> entries)
    {
        var result = new List<EpochEntry>();
        foreach (var e in entries)
        {
            if (e.Epoch < 0)
            {
                continue;
            }

            if (result.Count > 0 && result[^1].Epoch == e.Epoch && result[^1].StartOffset <= e.StartOffset)
            {
                continue;
            }

            result.RemoveAll(r => r.Epoch >= e.Epoch || r.StartOffset >= e.StartOffset);
            result.Add(e);
        }

        return [.. result];
    }

    /// <summary>Makes <paramref name="next"/> the entries, in the file first; always true (the file was rewritten).</summary>
    private bool Replace(EpochEntry[] next)
    {
        Write(next);
        Volatile.Write(ref _entries, next);
        return true;
    }

    private void Write(EpochEntry[] entries, bool syncDirectory = true, bool syncFile = true)
    {
        if (_directory is null || _deferred)
        {
            return;
        }

        var path = Path.Combine(_directory, FileName);
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(Encoding.UTF8.GetBytes(Format(entries)));
            f.Flush(flushToDisk: syncFile);
        }

        File.Move(tmp, path, overwrite: true);
        if (syncDirectory)
        {
            DirectorySync.Sync(_directory);
        }
    }
}
