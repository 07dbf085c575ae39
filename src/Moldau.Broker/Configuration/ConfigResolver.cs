using System.Globalization;
using Moldau.Protocol.Records;
using Moldau.Storage;
using Moldau.Storage.Cleaning;

namespace Moldau.Broker.Configuration;

/// <summary>Where config values come from, highest precedence first: a topic's overrides (null for a broker), the broker's dynamic configs, server.properties.</summary>
/// <param name="Topic">The topic's overrides (ConfigRecords), or null.</param>
/// <param name="DynamicBroker">Broker configs set by AlterConfigs (ConfigRecords).</param>
/// <param name="Static">server.properties with the <c>--override</c>s applied.</param>
internal readonly record struct ConfigLayers(IReadOnlyDictionary<string, string>? Topic, IReadOnlyDictionary<string, string> DynamicBroker, IReadOnlyDictionary<string, string> Static);

/// <summary>One value of a config from one source (a DescribeConfigs entry or synonym).</summary>
/// <param name="Name">The key it is set under (the topic key, or a broker synonym).</param>
/// <param name="Value">The value as set there (in the synonym's unit).</param>
/// <param name="Source">Where it comes from.</param>
internal readonly record struct ConfigEntry(string Name, string? Value, ConfigSource Source);

/// <summary>
/// Kafka's precedence, in one place: a topic config's value is the topic's override, else the
/// first of its broker synonyms set dynamically, else the first set in server.properties, else the
/// default; a broker key's is its dynamic value, else its static one, else its default. The typed
/// settings of a partition log (<see cref="LogOptions"/>) and of the cleaner come from here.
/// </summary>
internal static class ConfigResolver
{
    /// <summary>
    /// Every source of topic config <paramref name="definition"/> that holds a value, highest
    /// precedence first (DescribeConfigs' synonyms); the first is the one in force. A value that
    /// does not parse (a record written by an older version) is passed over.
    /// </summary>
    public static List<ConfigEntry> TopicSynonyms(ConfigDefinition definition, in ConfigLayers layers)
    {
        var list = new List<ConfigEntry>();
        if (layers.Topic is { } topic && topic.TryGetValue(definition.Name, out var own) && definition.Problem(own) is null)
        {
            list.Add(new ConfigEntry(definition.Name, own, ConfigSource.DynamicTopicConfig));
        }

        AddBroker(list, definition.Synonyms.Select(s => s.Name), layers);
        if (!list.Any(e => e.Source == ConfigSource.DefaultConfig))
        {
            list.Add(new ConfigEntry(definition.Name, definition.Default, ConfigSource.DefaultConfig));
        }

        return list;
    }

    /// <summary>Every source of broker key <paramref name="name"/> (and, for a key that supplies a topic default, its lower synonyms).</summary>
    public static List<ConfigEntry> BrokerSynonyms(string name, in ConfigLayers layers)
    {
        var chain = TopicConfigDefinitions.ServedBy(name).FirstOrDefault() is { } topic
            ? topic.Synonyms.Select(s => s.Name).SkipWhile(n => n != name)
            : new[] { name };
        var list = new List<ConfigEntry>();
        AddBroker(list, chain, layers);
        return list;
    }

    /// <summary>A broker key's value in force: dynamic, else static, else its default; with its source.</summary>
    public static ConfigEntry Broker(string name, in ConfigLayers layers) =>
        layers.DynamicBroker.TryGetValue(name, out var set) ? new ConfigEntry(name, set, ConfigSource.DynamicBrokerConfig)
        : layers.Static.TryGetValue(name, out var stat) ? new ConfigEntry(name, stat, ConfigSource.StaticBrokerConfig)
        : new ConfigEntry(name, BrokerConfigDefinitions.Find(name)?.Default, ConfigSource.DefaultConfig);

    private static void AddBroker(List<ConfigEntry> list, IEnumerable<string> names, in ConfigLayers layers)
    {
        var chain = names.ToList();
        foreach (var (source, values) in new[] { (ConfigSource.DynamicBrokerConfig, layers.DynamicBroker), (ConfigSource.StaticBrokerConfig, layers.Static) })
        {
            foreach (var name in chain)
            {
                if (values.TryGetValue(name, out var v) && BrokerConfigDefinitions.Find(name)?.Problem(v) is null)
                {
                    list.Add(new ConfigEntry(name, v, source));
                }
            }
        }

        foreach (var name in chain)
        {
            if (BrokerConfigDefinitions.Find(name)?.Default is { } d)
            {
                list.Add(new ConfigEntry(name, d, ConfigSource.DefaultConfig));
                break;
            }
        }
    }

    /// <summary>Topic config <paramref name="name"/>'s value in force, in the topic key's unit, with its source.</summary>
    public static (string? Value, ConfigSource Source) Topic(string name, in ConfigLayers layers)
    {
        var definition = TopicConfigDefinitions.Find(name) ?? throw new ArgumentException($"unknown topic config {name}", nameof(name));
        var first = TopicSynonyms(definition, layers)[0];
        var factor = definition.Synonyms.FirstOrDefault(s => s.Name == first.Name && first.Source != ConfigSource.DynamicTopicConfig)?.Factor ?? 1;
        return factor == 1 || first.Value is null
            ? (first.Value, first.Source)
            : (Scale(first.Value, factor), first.Source);
    }

    private static string Scale(string value, long factor) =>
        long.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v)
            ? (v > long.MaxValue / factor ? long.MaxValue : v < long.MinValue / factor ? long.MinValue : v * factor).ToString(CultureInfo.InvariantCulture)
            : value;

    /// <summary>
    /// The typed settings of a partition log of a topic (Kafka's <c>LogConfig</c>): what
    /// <see cref="PartitionLog.Open"/> and <see cref="PartitionLog.Reconfigure"/> take. Moldau's own
    /// durability (fsync before acks=all is answered) holds unless flush.messages or flush.ms is
    /// set explicitly, at any level.
    /// </summary>
    public static PartitionLogOptions LogOptions(in ConfigLayers layers)
    {
        var l = layers;
        string Text(string name) => Topic(name, l).Value ?? string.Empty;
        long Long(string name) => long.TryParse(Text(name).Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : long.Parse(TopicConfigDefinitions.All[name].Default!, CultureInfo.InvariantCulture);
        var policy = Text("cleanup.policy").Split(',', StringSplitOptions.TrimEntries);
        var flushMs = Long("flush.ms");
        var explicitFlush = Topic("flush.messages", l).Source != ConfigSource.DefaultConfig || Topic("flush.ms", l).Source != ConfigSource.DefaultConfig;
        return new PartitionLogOptions
        {
            SegmentBytes = Long("segment.bytes"),
            SegmentAge = Duration(Math.Max(1, Long("segment.ms"))),
            SegmentJitter = Duration(Math.Max(0, Long("segment.jitter.ms"))),
            MaxIndexBytes = (int)Math.Clamp(Long("segment.index.bytes"), 4, int.MaxValue),
            IndexIntervalBytes = (int)Math.Clamp(Long("index.interval.bytes"), 0, int.MaxValue),
            FileDeleteDelay = TimeSpan.FromMilliseconds(Math.Clamp(Long("file.delete.delay.ms"), 0, MaxDelayMs)),
            SyncBeforeAck = !explicitFlush,
            FlushMessages = Math.Max(1, Long("flush.messages")),
            FlushInterval = flushMs <= MaxDelayMs ? TimeSpan.FromMilliseconds(Math.Max(1, flushMs)) : null,
            MaxMessageBytes = (int)Math.Clamp(Long("max.message.bytes"), 0, int.MaxValue),
            Compression = Text("compression.type").Trim() switch
            {
                "uncompressed" => CompressionType.None,
                "gzip" => CompressionType.Gzip,
                "snappy" => CompressionType.Snappy,
                "lz4" => CompressionType.Lz4,
                "zstd" => CompressionType.Zstd,
                _ => null,
            },
            LogAppendTime = Text("message.timestamp.type").Trim() == "LogAppendTime",
            TimestampBeforeMaxMs = Math.Max(0, Long("message.timestamp.before.max.ms")),
            TimestampAfterMaxMs = Math.Max(0, Long("message.timestamp.after.max.ms")),
            Compact = policy.Contains("compact", StringComparer.Ordinal),
            Delete = policy.Contains("delete", StringComparer.Ordinal),
            RetentionMs = Long("retention.ms"),
            RetentionBytes = Long("retention.bytes"),
            DeleteRetentionMs = Math.Max(0, Long("delete.retention.ms")),
            MinCleanableDirtyRatio = double.TryParse(Text("min.cleanable.dirty.ratio"), NumberStyles.Float, CultureInfo.InvariantCulture, out var ratio) ? ratio : 0.5,
            MinCompactionLagMs = Math.Max(0, Long("min.compaction.lag.ms")),
            MaxCompactionLagMs = Math.Max(1, Long("max.compaction.lag.ms")),
            MinInSyncReplicas = (int)Math.Clamp(Long("min.insync.replicas"), 1, int.MaxValue),
        };
    }

    /// <summary>
    /// Kafka's checks across a topic's configs (<c>LogConfig.validateValues</c>), on the values in
    /// force: null when they agree, else the INVALID_CONFIG message.
    /// </summary>
    public static string? Conflict(in ConfigLayers layers)
    {
        var options = LogOptions(layers);
        return options.MinCompactionLagMs > options.MaxCompactionLagMs
            ? $"conflict topic config setting min.compaction.lag.ms ({options.MinCompactionLagMs}) > max.compaction.lag.ms ({options.MaxCompactionLagMs})"
            : null;
    }

    /// <summary>The cleaner's settings for a log (from its current options).</summary>
    public static CleanerSettings Cleaner(PartitionLogOptions options) => new()
    {
        DeleteRetentionMs = options.DeleteRetentionMs,
        MinCleanableDirtyRatio = options.MinCleanableDirtyRatio,
        MinCompactionLagMs = options.MinCompactionLagMs,
        MaxCompactionLagMs = options.MaxCompactionLagMs,
    };

    /// <summary>The longest delay a timer takes (Task.Delay's limit, about 49 days); longer ones never fire.</summary>
    private const long MaxDelayMs = uint.MaxValue - 1;

    private static TimeSpan Duration(long ms) => ms >= (long)TimeSpan.MaxValue.TotalMilliseconds ? TimeSpan.MaxValue : TimeSpan.FromMilliseconds(ms);
}
