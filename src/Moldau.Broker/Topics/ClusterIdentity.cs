using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>
/// The cluster id and node id kept in each log dir's <c>meta.properties</c>, as Kafka's
/// <c>kafka-storage.sh format</c> writes it. A directory formatted by Kafka keeps its cluster id.
/// </summary>
internal static class ClusterIdentity
{
    /// <summary>Reads the cluster id from any log dir's meta.properties, or makes one; then writes the file where missing.</summary>
    public static string LoadOrCreate(IReadOnlyList<string> logDirs, int nodeId)
    {
        string? clusterId = null;
        foreach (var dir in logDirs)
        {
            var props = Read(Path.Combine(dir, "meta.properties"));
            if (props.TryGetValue("cluster.id", out var id) && id.Length > 0)
            {
                clusterId = id;
                break;
            }
        }

        clusterId ??= Uuid.NewRandom().ToString();
        foreach (var dir in logDirs)
        {
            var path = Path.Combine(dir, "meta.properties");
            if (File.Exists(path))
            {
                continue;
            }

            Directory.CreateDirectory(dir);
            var text = $"#\n#Written by Moldau\nnode.id={nodeId}\ndirectory.id={Uuid.NewRandom()}\nversion=1\ncluster.id={clusterId}\n";
            var tmp = path + ".tmp";
            using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
            {
                f.Write(System.Text.Encoding.UTF8.GetBytes(text));
                f.Flush(flushToDisk: true);
            }

            File.Move(tmp, path, overwrite: true);
            DirectorySync.Sync(Path.GetDirectoryName(path)!);
        }

        return clusterId;
    }

    private static Dictionary<string, string> Read(string path)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (!File.Exists(path))
        {
            return result;
        }

        foreach (var line in File.ReadAllLines(path))
        {
            var t = line.Trim();
            if (t.Length == 0 || t[0] is '#' or '!')
            {
                continue;
            }

            var eq = t.IndexOf('=');
            if (eq > 0)
            {
                result[t[..eq].Trim()] = t[(eq + 1)..].Trim();
            }
        }

        return result;
    }
}
