namespace Moldau.Storage;

/// <summary>
/// The logs of each log dir that <see cref="LocalLogManager"/> has not opened yet (the broker
/// opens them in the background and on demand): what the checkpoints said of them at start, to be
/// written back unchanged, so a stop or crash before they open loses nothing; and, in a log dir
/// that was not closed cleanly, which of them still have to be read through, so the dir is not
/// marked clean before they were. Not thread-safe: the log manager calls it under its lock.
/// </summary>
internal sealed class UnopenedLogs
{
    private readonly Dictionary<(string LogDir, string File), Dictionary<(string Topic, int Partition), long>> _checkpoints = [];
    private readonly Dictionary<string, HashSet<(string Topic, int Partition)>> _unrecovered = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<(string Topic, int Partition)>> _present = new(StringComparer.Ordinal);

    /// <summary>
    /// Takes the partition directories of <paramref name="logDir"/> (one listing of it) as not
    /// opened; when the dir was not closed cleanly, as still to be recovered too.
    /// </summary>
    public void AddLogDir(string logDir, bool closedCleanly)
    {
        var full = Path.GetFullPath(logDir);
        var present = new HashSet<(string, int)>();
        if (Directory.Exists(logDir))
        {
            foreach (var dir in Directory.EnumerateDirectories(logDir))
            {
                if (KeyOf(Path.GetFileName(dir)) is { } key)
                {
                    present.Add(key);
                }
            }
        }

        if (!closedCleanly)
        {
            _unrecovered[full] = [.. present];
        }

        _present[full] = present;
    }

    /// <summary>
    /// Keeps the entries <paramref name="entries"/> of checkpoint <paramref name="file"/> of
    /// <paramref name="logDir"/> (after <see cref="AddLogDir"/>) whose partition has a directory
    /// there: entries of logs gone from the disk are dropped, as Kafka drops them.
    /// </summary>
    public void AddCheckpoint(string logDir, string file, Dictionary<(string Topic, int Partition), long> entries)
    {
        var full = Path.GetFullPath(logDir);
        var present = _present.GetValueOrDefault(full);
        _checkpoints[(full, file)] = entries.Where(e => present?.Contains(e.Key) == true).ToDictionary(e => e.Key, e => e.Value);
    }

    /// <summary>The partition's log was opened (or removed) in <paramref name="logDir"/>: the log speaks for itself from now on.</summary>
    public void Opened(string logDir, (string Topic, int Partition) key)
    {
        var full = Path.GetFullPath(logDir);
        foreach (var ((dir, _), entries) in _checkpoints)
        {
            if (dir == full)
            {
                entries.Remove(key);
            }
        }

        _present.GetValueOrDefault(full)?.Remove(key);
        _unrecovered.GetValueOrDefault(full)?.Remove(key);
    }

    /// <summary>Adds to <paramref name="into"/> the entries of checkpoint <paramref name="file"/> of logs of <paramref name="logDir"/> not opened yet.</summary>
    public void AddTo(Dictionary<(string, int), long> into, string logDir, string file)
    {
        foreach (var (key, offset) in _checkpoints.GetValueOrDefault((Path.GetFullPath(logDir), file)) ?? [])
        {
            into[key] = offset;
        }
    }

    /// <summary>True when <paramref name="logDir"/> has no log left that must be read through before it is trusted.</summary>
    public bool AllRecovered(string logDir) => _unrecovered.GetValueOrDefault(Path.GetFullPath(logDir)) is not { Count: > 0 };

    /// <summary>The partition a <c>topic-partition</c> directory holds; null for anything else (the metadata log, a directory being deleted).</summary>
    private static (string, int)? KeyOf(string name)
    {
        var dash = name.LastIndexOf('-');
        return dash > 0 && int.TryParse(name.AsSpan(dash + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index)
            && !name.StartsWith("__cluster_metadata", StringComparison.Ordinal)
            ? (name[..dash], index)
            : null;
    }
}
