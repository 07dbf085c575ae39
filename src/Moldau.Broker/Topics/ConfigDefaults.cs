using System.Globalization;

namespace Moldau.Broker.Topics;

/// <summary>
/// Kafka's topic configs with their defaults, the broker keys that set them, and the checks on
/// their values: the one definition CreateTopics, AlterConfigs and IncrementalAlterConfigs share.
/// </summary>
internal static class ConfigDefaults
{
    /// <summary>Kafka's ConfigType values (DescribeConfigs v3+).</summary>
    public enum ConfigType : sbyte
    {
        Boolean = 1,
        String = 2,
        Int = 3,
        Long = 5,
        Double = 6,
        List = 7,
    }

    /// <summary>Topic config name to (default value, broker key that sets the default, type).</summary>
    public static readonly IReadOnlyDictionary<string, (string Default, string? BrokerKey, ConfigType Type)> Topic = new Dictionary<string, (string, string?, ConfigType)>(StringComparer.Ordinal)
    {
        ["cleanup.policy"] = ("delete", "log.cleanup.policy", ConfigType.List),
        ["compression.type"] = ("producer", "compression.type", ConfigType.String),
        ["delete.retention.ms"] = ("86400000", "log.cleaner.delete.retention.ms", ConfigType.Long),
        ["file.delete.delay.ms"] = ("60000", "log.segment.delete.delay.ms", ConfigType.Long),
        ["flush.messages"] = ("9223372036854775807", "log.flush.interval.messages", ConfigType.Long),
        ["flush.ms"] = ("9223372036854775807", "log.flush.interval.ms", ConfigType.Long),
        ["index.interval.bytes"] = ("4096", "log.index.interval.bytes", ConfigType.Int),
        ["max.compaction.lag.ms"] = ("9223372036854775807", "log.cleaner.max.compaction.lag.ms", ConfigType.Long),
        ["max.message.bytes"] = ("1048588", "message.max.bytes", ConfigType.Int),
        ["message.timestamp.after.max.ms"] = ("9223372036854775807", "log.message.timestamp.after.max.ms", ConfigType.Long),
        ["message.timestamp.before.max.ms"] = ("9223372036854775807", "log.message.timestamp.before.max.ms", ConfigType.Long),
        ["message.timestamp.type"] = ("CreateTime", "log.message.timestamp.type", ConfigType.String),
        ["min.cleanable.dirty.ratio"] = ("0.5", "log.cleaner.min.cleanable.ratio", ConfigType.Double),
        ["min.compaction.lag.ms"] = ("0", "log.cleaner.min.compaction.lag.ms", ConfigType.Long),
        ["min.insync.replicas"] = ("1", "min.insync.replicas", ConfigType.Int),
        ["preallocate"] = ("false", "log.preallocate", ConfigType.Boolean),
        ["retention.bytes"] = ("-1", "log.retention.bytes", ConfigType.Long),
        ["retention.ms"] = ("604800000", "log.retention.ms", ConfigType.Long),
        ["segment.bytes"] = ("1073741824", "log.segment.bytes", ConfigType.Int),
        ["segment.index.bytes"] = ("10485760", "log.index.size.max.bytes", ConfigType.Int),
        ["segment.jitter.ms"] = ("0", "log.roll.jitter.ms", ConfigType.Long),
        ["segment.ms"] = ("604800000", "log.roll.ms", ConfigType.Long),
        ["unclean.leader.election.enable"] = ("false", "unclean.leader.election.enable", ConfigType.Boolean),
    };

    /// <summary>
    /// Bounds and allowed values beyond the type, as Kafka's LogConfig declares them (numbers:
    /// inclusive min and max; strings and lists: the allowed values, case-sensitive).
    /// </summary>
    private static readonly IReadOnlyDictionary<string, (double Min, double Max, string[]? OneOf)> TopicRules = new Dictionary<string, (double, double, string[]?)>(StringComparer.Ordinal)
    {
        ["cleanup.policy"] = (0, 0, ["compact", "delete"]),
        ["compression.type"] = (0, 0, ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
        ["delete.retention.ms"] = (0, long.MaxValue, null),
        ["file.delete.delay.ms"] = (0, long.MaxValue, null),
        ["flush.messages"] = (1, long.MaxValue, null),
        ["flush.ms"] = (0, long.MaxValue, null),
        ["index.interval.bytes"] = (0, int.MaxValue, null),
        ["max.compaction.lag.ms"] = (1, long.MaxValue, null),
        ["max.message.bytes"] = (0, int.MaxValue, null),
        ["message.timestamp.type"] = (0, 0, ["CreateTime", "LogAppendTime"]),
        ["min.cleanable.dirty.ratio"] = (0, 1, null),
        ["min.compaction.lag.ms"] = (0, long.MaxValue, null),
        ["min.insync.replicas"] = (1, int.MaxValue, null),
        ["retention.ms"] = (-1, long.MaxValue, null),
        ["segment.bytes"] = (14, int.MaxValue, null), // Kafka before 4.0; 4.0 asks for 1 MiB (docs/compatibility.md)
        ["segment.index.bytes"] = (4, int.MaxValue, null),
        ["segment.jitter.ms"] = (0, long.MaxValue, null),
        ["segment.ms"] = (1, long.MaxValue, null),
    };

    /// <summary>
    /// Checks one topic config as Kafka's LogConfig does: a known name and, unless
    /// <paramref name="value"/> is null (a delete), a value of its type within its bounds.
    /// Null when it is fine, else Kafka's message for INVALID_CONFIG.
    /// </summary>
    public static string? ValidateTopic(string name, string? value)
    {
        if (!Topic.TryGetValue(name, out var definition))
        {
            return $"Unknown topic config name: {name}";
        }

        if (value is null)
        {
            return null;
        }

        var rule = TopicRules.GetValueOrDefault(name, (double.MinValue, double.MaxValue, null));
        var trimmed = value.Trim();
        string? problem = null;
        switch (definition.Type)
        {
            case ConfigType.Boolean:
                problem = trimmed.Equals("true", StringComparison.OrdinalIgnoreCase) || trimmed.Equals("false", StringComparison.OrdinalIgnoreCase)
                    ? null : "Expected value to be either true or false";
                break;
            case ConfigType.Int or ConfigType.Long or ConfigType.Double:
                var (parsed, number) = ParseNumber(definition.Type, trimmed);
                problem = !parsed ? $"Not a number of type {definition.Type.ToString().ToUpperInvariant()}"
                    : number < rule.Min ? $"Value must be at least {Format(rule.Min)}"
                    : number > rule.Max ? $"Value must be no more than {Format(rule.Max)}"
                    : null;
                break;
            case ConfigType.List when rule.OneOf is { } allowed:
                problem = trimmed.Split(',').Select(v => v.Trim()).Any(v => !allowed.Contains(v, StringComparer.Ordinal))
                    ? $"String must be one of: {string.Join(", ", allowed)}" : null;
                break;
            case ConfigType.String when rule.OneOf is { } allowed:
                problem = allowed.Contains(trimmed, StringComparer.Ordinal) ? null : $"String must be one of: {string.Join(", ", allowed)}";
                break;
        }

        return problem is null ? null : $"Invalid value {value} for configuration {name}: {problem}";
    }

    private static (bool Parsed, double Number) ParseNumber(ConfigType type, string value)
    {
        const NumberStyles integer = NumberStyles.AllowLeadingSign;
        return type switch
        {
            ConfigType.Int => int.TryParse(value, integer, CultureInfo.InvariantCulture, out var i) ? (true, i) : (false, 0),
            ConfigType.Long => long.TryParse(value, integer, CultureInfo.InvariantCulture, out var l) ? (true, l) : (false, 0),
            _ => double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d) ? (true, d) : (false, 0),
        };
    }

    private static string Format(double bound) => bound.ToString(bound == Math.Floor(bound) ? "F0" : "R", CultureInfo.InvariantCulture);

    /// <summary>Broker configs Moldau reports with their defaults (those it reads, plus the topic defaults' keys).</summary>
    public static readonly IReadOnlyDictionary<string, string> Broker = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        ["num.partitions"] = "1",
        ["auto.create.topics.enable"] = "true",
        ["default.replication.factor"] = "1",
        ["message.max.bytes"] = "1048588",
        ["socket.request.max.bytes"] = "104857600",
        ["log.segment.bytes"] = "1073741824",
        ["log.retention.ms"] = "604800000",
        ["log.retention.bytes"] = "-1",
        ["log.cleanup.policy"] = "delete",
        ["offsets.topic.num.partitions"] = "50",
        ["group.initial.rebalance.delay.ms"] = "3000",
        ["min.insync.replicas"] = "1",
        ["compression.type"] = "producer",
    };
}
