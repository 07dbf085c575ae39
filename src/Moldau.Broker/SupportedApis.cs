using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>
/// What ApiVersions advertises: the APIs registered in <see cref="ApiRegistry"/>, with their
/// versions checked against the specs.
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

    /// <summary>
    /// Versions the specs Moldau holds (from before Kafka 4.0) still mark unstable but Kafka 4.0
    /// released, with the fields of the spec: ConsumerGroupHeartbeat v1 (KIP-848's regular
    /// expressions and client-made member ids), the only version librdkafka 2.x sends.
    /// </summary>
    internal static readonly HashSet<(ApiKey, short)> ReleasedSinceSpecs = [(ApiKey.ConsumerGroupHeartbeat, 1)];

    /// <summary>Every served API in key order: one entry per registration in <see cref="ApiRegistry"/>.</summary>
    public static readonly IReadOnlyList<Entry> All = Build([.. ApiRegistry.All.Select(r => new Entry(r.Key, r.MinAdvertised, r.MaxVersion, r.MinServed))]);

    private static readonly Entry?[] ByKey = Index(All);

    /// <summary>The entry for <paramref name="apiKey"/>, or null when it is not served.</summary>
    public static Entry? Find(short apiKey) => apiKey >= 0 && apiKey < ByKey.Length ? ByKey[apiKey] : null;

    private static IReadOnlyList<Entry> Build(Entry[] entries)
    {
        foreach (var e in entries)
        {
            // Never advertise beyond the specs, nor a version the spec marks unstable.
            var spec = ApiSpecs.Find((short)e.Key) ?? throw new InvalidOperationException($"no spec for {e.Key}");
            var highestStable = spec.LatestVersionUnstable && !ReleasedSinceSpecs.Contains((e.Key, spec.HighestVersion)) ? spec.HighestVersion - 1 : spec.HighestVersion;
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
