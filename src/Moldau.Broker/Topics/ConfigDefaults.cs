namespace Moldau.Broker.Topics;

/// <summary>Kafka's topic configs with their defaults, and the broker keys that set them.</summary>
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
