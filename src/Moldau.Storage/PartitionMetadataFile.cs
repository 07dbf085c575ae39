using Moldau.Protocol;

namespace Moldau.Storage;

/// <summary>
/// A partition directory's <c>partition.metadata</c>, as Kafka writes it:
/// <code>
/// version: 0
/// topic_id: &lt;base64 topic id&gt;
/// </code>
/// </summary>
public static class PartitionMetadataFile
{
    /// <summary>The file's name.</summary>
    public const string FileName = "partition.metadata";

    /// <summary>Writes the file (through a temporary file, synced, then renamed).</summary>
    public static void Write(string directory, Uuid topicId)
    {
        var path = Path.Combine(directory, FileName);
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(System.Text.Encoding.UTF8.GetBytes($"version: 0\ntopic_id: {topicId}\n"));
            f.Flush(flushToDisk: true);
        }

        File.Move(tmp, path, overwrite: true);
        DirectorySync.Sync(Path.GetDirectoryName(path)!);
    }

    /// <summary>
    /// Writes the file of a new partition with no fsync (Kafka flushes it asynchronously too):
    /// the directory's first fsync (its log's first flush) keeps the entry, and a file a crash
    /// left empty or torn reads as missing, so opening the log writes it again.
    /// </summary>
    public static void WriteUnsynced(string directory, Uuid topicId) =>
        File.WriteAllText(Path.Combine(directory, FileName), $"version: 0\ntopic_id: {topicId}\n");

    /// <summary>The topic id in the file, or null when there is no (readable) file.</summary>
    public static Uuid? Read(string directory)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return null;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            if (line.StartsWith("topic_id:", StringComparison.Ordinal))
            {
                try
                {
                    return Uuid.Parse(line["topic_id:".Length..].Trim());
                }
                catch (FormatException)
                {
                    return null;
                }
            }
        }

        return null;
    }
}
