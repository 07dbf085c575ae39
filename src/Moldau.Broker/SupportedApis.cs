using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>
/// The table of implemented handlers, and so of what ApiVersions advertises: an API is listed
/// here only once its handler exists in <see cref="KafkaBroker"/>'s dispatch switch.
/// </summary>
internal static class SupportedApis
{
    /// <summary>One served API: the advertised range, and the lowest version actually accepted.</summary>
    /// <param name="Key">The API.</param>
    /// <param name="MinAdvertised">Lowest version advertised in ApiVersions.</param>
    /// <param name="MaxVersion">Highest version served.</param>
    /// <param name="MinServed">Lowest version served; below it (but at or above MinAdvertised) the
    /// request gets an UNSUPPORTED_VERSION error response, as Kafka 4 does for Produce v0-v2.</param>
    internal sealed record Entry(ApiKey Key, short MinAdvertised, short MaxVersion, short MinServed);

    /// <summary>Every served API in key order.</summary>
    public static readonly IReadOnlyList<Entry> All = Build(
    [
        // librdkafka before 2.11 sends gzip, snappy and lz4 only when Produce v0 is advertised
        // (KAFKA-18659); v0-v2 carry the pre-0.11 message format and are refused.
        new(ApiKey.Produce, 0, 11, 3),
        // Fetch v0-v3 would need down-conversion to the old message format.
        new(ApiKey.Fetch, 4, 17, 4),
        new(ApiKey.ListOffsets, 1, 10, 1),
        new(ApiKey.Metadata, 0, 12, 0),
        new(ApiKey.ApiVersions, 0, 4, 0),
        new(ApiKey.DescribeTopicPartitions, 0, 0, 0),
        new(ApiKey.CreateTopics, 0, 7, 0),
        new(ApiKey.DeleteTopics, 0, 6, 0),
        new(ApiKey.CreatePartitions, 0, 3, 0),
        new(ApiKey.InitProducerId, 0, 5, 0),
        new(ApiKey.FindCoordinator, 0, 6, 0),
        new(ApiKey.JoinGroup, 0, 9, 0),
        new(ApiKey.SyncGroup, 0, 5, 0),
        new(ApiKey.Heartbeat, 0, 4, 0),
        new(ApiKey.LeaveGroup, 0, 5, 0),
        new(ApiKey.OffsetCommit, 0, 9, 0),
        new(ApiKey.OffsetFetch, 0, 9, 0),
        new(ApiKey.ListGroups, 0, 5, 0),
        new(ApiKey.DescribeGroups, 0, 5, 0),
        new(ApiKey.DeleteGroups, 0, 2, 0),
        new(ApiKey.OffsetDelete, 0, 0, 0),
        new(ApiKey.DescribeCluster, 0, 1, 0),
        new(ApiKey.DescribeConfigs, 0, 4, 0),
        new(ApiKey.AlterConfigs, 0, 2, 0),
        new(ApiKey.IncrementalAlterConfigs, 0, 1, 0),
        new(ApiKey.OffsetForLeaderEpoch, 0, 4, 0),
        new(ApiKey.DeleteRecords, 0, 2, 0),
        new(ApiKey.DescribeLogDirs, 0, 4, 0),
        new(ApiKey.DescribeProducers, 0, 0, 0),
    ]);

    private static readonly Entry?[] ByKey = Index(All);

    /// <summary>The entry for <paramref name="apiKey"/>, or null when it is not served.</summary>
    public static Entry? Find(short apiKey) => apiKey >= 0 && apiKey < ByKey.Length ? ByKey[apiKey] : null;

    private static IReadOnlyList<Entry> Build(Entry[] entries)
    {
        foreach (var e in entries)
        {
            // Never advertise beyond the specs, nor a version the spec marks unstable.
            var spec = ApiSpecs.Find((short)e.Key) ?? throw new InvalidOperationException($"no spec for {e.Key}");
            var highestStable = spec.LatestVersionUnstable ? spec.HighestVersion - 1 : spec.HighestVersion;
            if (e.MaxVersion > highestStable || e.MinAdvertised < spec.LowestVersion)
            {
                throw new InvalidOperationException($"{e.Key} v{e.MinAdvertised}-v{e.MaxVersion} is outside the spec's stable range");
            }
        }

        return entries.OrderBy(e => e.Key).ToArray();
    }

    private static Entry?[] Index(IReadOnlyList<Entry> entries)
    {
        var table = new Entry?[entries.Max(e => (int)e.Key) + 1];
        foreach (var e in entries)
        {
            table[(int)e.Key] = e;
        }

        return table;
    }
}
