using System.Globalization;

namespace Moldau.Cluster.Cleanup;

/// <summary>
/// How the shared clean-up job runs (docs/cluster.md, "Retention and clean-up"): from
/// server.properties, <c>moldau.cluster.cleanup.interval.ms</c>, <c>moldau.cluster.object.delete.grace.ms</c>,
/// <c>moldau.cluster.orphan.grace.ms</c>, <c>moldau.cluster.orphan.sweep.interval.ms</c>, and Kafka's
/// broker defaults for topics without their own: <c>log.retention.ms</c> (or <c>.minutes</c>,
/// <c>.hours</c>), <c>log.retention.bytes</c>, <c>log.cleanup.policy</c>.
/// </summary>
public sealed record ClusterCleanupOptions
{
    /// <summary>The key of <see cref="Interval"/>.</summary>
    public const string IntervalKey = "moldau.cluster.cleanup.interval.ms";

    /// <summary>The key of <see cref="DeleteGrace"/>.</summary>
    public const string DeleteGraceKey = "moldau.cluster.object.delete.grace.ms";

    /// <summary>The key of <see cref="OrphanGrace"/>.</summary>
    public const string OrphanGraceKey = "moldau.cluster.orphan.grace.ms";

    /// <summary>The key of <see cref="OrphanSweepInterval"/>.</summary>
    public const string OrphanSweepIntervalKey = "moldau.cluster.orphan.sweep.interval.ms";

    /// <summary>
    /// How often a broker's runner runs the job, and how long a partition stays checked (its next
    /// retention check is due this long after the last, whichever broker made it). Default 60 s.
    /// </summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// How long an object stays in the bucket after the job found no batch row referring to it
    /// (fetches that looked its batches up before they were dropped may still be reading), and how
    /// old a committed object must be before it can be found unreferenced at all (a commit whose
    /// every batch was refused refers to nothing, yet its retry must find the outcome). Default 5 min.
    /// </summary>
    public TimeSpan DeleteGrace { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// An object under the cluster's prefix with no catalog row is swept only when both its key's
    /// creation time and the store's last-modified time are older than this (by PostgreSQL's clock):
    /// longer than any upload-to-commit can take. Default 1 h.
    /// </summary>
    public TimeSpan OrphanGrace { get; init; } = TimeSpan.FromHours(1);

    /// <summary>How often the orphan sweep (a full listing of the cluster's prefix) runs, cluster-wide. Default 10 min.</summary>
    public TimeSpan OrphanSweepInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long the catalog row of a deleted object stays as a tombstone (its key can't be committed again). 1 day.</summary>
    public TimeSpan TombstoneRetention { get; init; } = TimeSpan.FromDays(1);

    /// <summary>retention.ms for topics without their own (Kafka's log.retention.ms; -1: none). Default 7 days.</summary>
    public long DefaultRetentionMs { get; init; } = 7L * 24 * 3600 * 1000;

    /// <summary>retention.bytes for topics without their own (Kafka's log.retention.bytes; -1: none).</summary>
    public long DefaultRetentionBytes { get; init; } = -1;

    /// <summary>cleanup.policy for topics without their own (Kafka's log.cleanup.policy).</summary>
    public string DefaultCleanupPolicy { get; init; } = "delete";

    /// <summary>How many partitions one claim (one transaction) checks.</summary>
    public int PartitionsPerClaim { get; init; } = 32;

    /// <summary>Reads the options from server.properties; absent keys keep their defaults.</summary>
    /// <exception cref="ArgumentException">A value is malformed.</exception>
    public static ClusterCleanupOptions FromProperties(IReadOnlyDictionary<string, string> properties)
    {
        var options = new ClusterCleanupOptions();
        var retentionMs = options.DefaultRetentionMs;
        if (properties.TryGetValue("log.retention.ms", out var ms))
        {
            retentionMs = Limit("log.retention.ms", ms);
        }
        else if (properties.TryGetValue("log.retention.minutes", out var minutes))
        {
            retentionMs = Scaled("log.retention.minutes", minutes, 60_000);
        }
        else if (properties.TryGetValue("log.retention.hours", out var hours))
        {
            retentionMs = Scaled("log.retention.hours", hours, 3_600_000);
        }

        return options with
        {
            Interval = Millis(properties, IntervalKey, options.Interval),
            DeleteGrace = Millis(properties, DeleteGraceKey, options.DeleteGrace),
            OrphanGrace = Millis(properties, OrphanGraceKey, options.OrphanGrace),
            OrphanSweepInterval = Millis(properties, OrphanSweepIntervalKey, options.OrphanSweepInterval),
            DefaultRetentionMs = retentionMs,
            DefaultRetentionBytes = properties.TryGetValue("log.retention.bytes", out var bytes) ? Limit("log.retention.bytes", bytes) : -1,
            DefaultCleanupPolicy = properties.TryGetValue("log.cleanup.policy", out var policy) ? policy.Trim() : options.DefaultCleanupPolicy,
        };
    }

    private static TimeSpan Millis(IReadOnlyDictionary<string, string> properties, string key, TimeSpan fallback)
    {
        if (!properties.TryGetValue(key, out var text))
        {
            return fallback;
        }

        return long.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : throw new ArgumentException($"{key}: '{text}' is not a positive number of milliseconds");
    }

    private static long Limit(string key, string text) =>
        Catalog.ClusterCatalog.ParseLimit(text) ?? throw new ArgumentException($"{key}: '{text}' is not a whole number of at least -1");

    private static long Scaled(string key, string text, long unit)
    {
        var value = Limit(key, text);
        return value < 0 ? -1 : checked(value * unit);
    }
}
