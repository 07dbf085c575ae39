using System.Globalization;

namespace Moldau.Storage;

/// <summary>
/// A log dir's <c>log-start-offset-checkpoint</c>, in Kafka's checkpoint format:
/// <code>
/// 0                      version
/// 2                      number of entries
/// orders 0 1500          topic, partition, log start offset
/// events 3 42
/// </code>
/// </summary>
public static class LogStartOffsetCheckpoint
{
    /// <summary>The file's name.</summary>
    public const string FileName = "log-start-offset-checkpoint";

    /// <summary>Kafka's file of each partition's recovery point, in the same format.</summary>
    public const string RecoveryPointFileName = "recovery-point-offset-checkpoint";

    /// <summary>Kafka's file of how far each compacted log was cleaned, in the same format.</summary>
    public const string CleanerOffsetFileName = "cleaner-offset-checkpoint";

    /// <summary>Reads the entries of <paramref name="fileName"/>; none when the file is missing or malformed.</summary>
    public static Dictionary<(string Topic, int Partition), long> Read(string logDir, string fileName = FileName)
    {
        var result = new Dictionary<(string, int), long>();
        var path = Path.Combine(logDir, fileName);
        if (!File.Exists(path))
        {
            return result;
        }

        var lines = File.ReadAllLines(path);
        if (lines.Length < 2 || lines[0].Trim() != "0")
        {
            return result;
        }

        foreach (var line in lines.Skip(2))
        {
            var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 3 && int.TryParse(parts[1], CultureInfo.InvariantCulture, out var p) && long.TryParse(parts[2], CultureInfo.InvariantCulture, out var o))
            {
                result[(parts[0], p)] = o;
            }
        }

        return result;
    }

    /// <summary>Writes the entries to <paramref name="fileName"/> through a synced temporary file and a rename.</summary>
    public static void Write(string logDir, IReadOnlyDictionary<(string Topic, int Partition), long> entries, string fileName = FileName)
    {
        var path = Path.Combine(logDir, fileName);
        var tmp = path + ".tmp";
        var text = $"0\n{entries.Count}\n" + string.Concat(entries.Select(e => string.Create(CultureInfo.InvariantCulture, $"{e.Key.Topic} {e.Key.Partition} {e.Value}\n")));
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(System.Text.Encoding.UTF8.GetBytes(text));
            f.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
        DirectorySync.Sync(logDir);
    }
}
