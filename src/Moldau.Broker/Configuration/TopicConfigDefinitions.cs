namespace Moldau.Broker.Configuration;

/// <summary>
/// Every topic config Moldau knows, one definition per key, as Kafka's <c>LogConfig</c> declares
/// them: type, Kafka's default and bounds, and the broker keys (Kafka's
/// <c>ServerTopicConfigSynonyms</c>) that supply the default. CreateTopics, AlterConfigs,
/// IncrementalAlterConfigs, DescribeConfigs and the log settings all read this table; a key not in
/// it is "Unknown topic config name", as in Kafka. All topic configs are dynamic.
/// </summary>
internal static class TopicConfigDefinitions
{
    private const string LongMax = "9223372036854775807";
    private const long Hour = 3_600_000;
    private const long Minute = 60_000;

    /// <summary>The definitions, by name, in name order.</summary>
    public static readonly IReadOnlyDictionary<string, ConfigDefinition> All = Build(
        new ConfigDefinition
        {
            Name = "cleanup.policy",
            Type = ConfigType.List,
            Default = "delete",
            OneOf = ["compact", "delete"],
            Synonyms = [new("log.cleanup.policy")],
            Documentation = "What happens to old segments: 'delete' drops them by retention.ms / retention.bytes, 'compact' keeps the latest record of each key; both may be listed.",
        },
        new ConfigDefinition
        {
            Name = "compression.type",
            Type = ConfigType.String,
            Default = "producer",
            OneOf = ["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"],
            Synonyms = [new("compression.type")],
            Documentation = "The codec batches are stored with. 'producer' keeps the producer's; any other value makes the broker re-compress a batch whose codec differs before it is written.",
        },
        new ConfigDefinition
        {
            Name = "delete.retention.ms",
            Type = ConfigType.Long,
            Default = "86400000",
            Min = 0,
            Synonyms = [new("log.cleaner.delete.retention.ms")],
            Documentation = "On a compacted topic, how long a tombstone stays after the cleaner first keeps it as the latest record of its key.",
        },
        new ConfigDefinition
        {
            Name = "file.delete.delay.ms",
            Type = ConfigType.Long,
            Default = "60000",
            Min = 0,
            Synonyms = [new("log.segment.delete.delay.ms")],
            Documentation = "How long a segment dropped by retention or replaced by the cleaner stays on disk (as .deleted) for reads in flight.",
        },
        new ConfigDefinition
        {
            Name = "flush.messages",
            Type = ConfigType.Long,
            Default = LongMax,
            Min = 1,
            Synonyms = [new("log.flush.interval.messages")],
            Documentation = "Set explicitly (here or by the broker key), Moldau follows Kafka's flush policy: fsync once this many messages are unflushed, and the high watermark follows the log end without waiting for fsync. Unset, every acknowledged acks=all batch is fsynced first.",
        },
        new ConfigDefinition
        {
            Name = "flush.ms",
            Type = ConfigType.Long,
            Default = LongMax,
            Min = 0,
            Synonyms = [new("log.flush.interval.ms"), new("log.flush.scheduler.interval.ms")],
            Documentation = "Set explicitly, Kafka's flush policy: fsync at most this long after the first unflushed append (see flush.messages).",
        },
        new ConfigDefinition
        {
            Name = "index.interval.bytes",
            Type = ConfigType.Int,
            Default = "4096",
            Min = 0,
            Synonyms = [new("log.index.interval.bytes")],
            Documentation = "Bytes of batches between two offset index entries; a change applies from the next segment.",
        },
        new ConfigDefinition
        {
            Name = "max.compaction.lag.ms",
            Type = ConfigType.Long,
            Default = LongMax,
            Min = 1,
            Synonyms = [new("log.cleaner.max.compaction.lag.ms")],
            Documentation = "On a compacted topic, the longest a record stays uncompacted: the active segment rolls by then and the cleaner compacts a log whose oldest dirty record is older, whatever its dirty ratio.",
        },
        new ConfigDefinition
        {
            Name = "max.message.bytes",
            Type = ConfigType.Int,
            Default = "1048588",
            Min = 0,
            Synonyms = [new("message.max.bytes")],
            Documentation = "The largest record batch the topic accepts (after re-compression, when compression.type asks for it); larger ones get MESSAGE_TOO_LARGE.",
        },
        new ConfigDefinition
        {
            Name = "message.timestamp.after.max.ms",
            Type = ConfigType.Long,
            Default = LongMax,
            Min = 0,
            Synonyms = [new("log.message.timestamp.after.max.ms")],
            Documentation = "On a CreateTime topic, how far a record's timestamp may lie after the broker's clock; a record beyond it gets INVALID_TIMESTAMP (KIP-937).",
        },
        new ConfigDefinition
        {
            Name = "message.timestamp.before.max.ms",
            Type = ConfigType.Long,
            Default = LongMax,
            Min = 0,
            Synonyms = [new("log.message.timestamp.before.max.ms")],
            Documentation = "On a CreateTime topic, how far a record's timestamp may lie before the broker's clock; a record beyond it gets INVALID_TIMESTAMP (KIP-937).",
        },
        new ConfigDefinition
        {
            Name = "message.timestamp.type",
            Type = ConfigType.String,
            Default = "CreateTime",
            OneOf = ["CreateTime", "LogAppendTime"],
            Synonyms = [new("log.message.timestamp.type")],
            Documentation = "CreateTime keeps the producer's timestamps; LogAppendTime stamps each batch with the broker's clock as it is appended.",
        },
        new ConfigDefinition
        {
            Name = "min.cleanable.dirty.ratio",
            Type = ConfigType.Double,
            Default = "0.5",
            Min = 0,
            Max = 1,
            Synonyms = [new("log.cleaner.min.cleanable.ratio")],
            Documentation = "On a compacted topic, the share of closed-segment bytes written since the last cleaning above which the log is cleaned again.",
        },
        new ConfigDefinition
        {
            Name = "min.compaction.lag.ms",
            Type = ConfigType.Long,
            Default = "0",
            Min = 0,
            Synonyms = [new("log.cleaner.min.compaction.lag.ms")],
            Documentation = "On a compacted topic, the least time a record stays uncompacted: segments holding newer records are left to a later cleaning.",
        },
        new ConfigDefinition
        {
            Name = "min.insync.replicas",
            Type = ConfigType.Int,
            Default = "1",
            Min = 1,
            Synonyms = [new("min.insync.replicas")],
            Documentation = "Replicas that must hold an acks=all batch. One node is one replica: above 1, acks=all produce gets NOT_ENOUGH_REPLICAS, as from a Kafka cluster short of replicas.",
        },
        new ConfigDefinition
        {
            Name = "preallocate",
            Type = ConfigType.Boolean,
            Default = "false",
            Synonyms = [new("log.preallocate")],
            Support = ConfigSupport.DefaultOnly,
            Refusal = "Moldau does not preallocate segment files",
            Documentation = "Kafka preallocates segment files when true; Moldau does not, and accepts only false.",
        },
        new ConfigDefinition
        {
            Name = "retention.bytes",
            Type = ConfigType.Long,
            Default = "-1",
            Synonyms = [new("log.retention.bytes")],
            Documentation = "With cleanup.policy=delete, the oldest closed segments go while a partition is larger than this; -1: no size limit.",
        },
        new ConfigDefinition
        {
            Name = "retention.ms",
            Type = ConfigType.Long,
            Default = "604800000",
            Min = -1,
            Synonyms = [new("log.retention.ms"), new("log.retention.minutes", Minute), new("log.retention.hours", Hour)],
            Documentation = "With cleanup.policy=delete, closed segments whose newest record is older than this go; -1: no time limit.",
        },
        new ConfigDefinition
        {
            // Kafka 4.0 asks for at least 1 MiB; 3.x for 14 bytes (docs/compatibility.md).
            Name = "segment.bytes",
            Type = ConfigType.Int,
            Default = "1073741824",
            Min = 14,
            Synonyms = [new("log.segment.bytes")],
            Documentation = "A segment rolls before it would grow past this size; a change reaches open logs at their next append.",
        },
        new ConfigDefinition
        {
            Name = "segment.index.bytes",
            Type = ConfigType.Int,
            Default = "10485760",
            Min = 4,
            Synonyms = [new("log.index.size.max.bytes")],
            Documentation = "The most bytes a segment's offset index (8-byte entries) and time index (12-byte entries) may hold; a segment rolls when either is full.",
        },
        new ConfigDefinition
        {
            Name = "segment.jitter.ms",
            Type = ConfigType.Long,
            Default = "0",
            Min = 0,
            Synonyms = [new("log.roll.jitter.ms"), new("log.roll.jitter.hours", Hour)],
            Documentation = "Each segment rolls by age up to this much (a random amount, below segment.ms) earlier, so partitions don't all roll at once.",
        },
        new ConfigDefinition
        {
            Name = "segment.ms",
            Type = ConfigType.Long,
            Default = "604800000",
            Min = 1,
            Synonyms = [new("log.roll.ms"), new("log.roll.hours", Hour)],
            Documentation = "A segment rolls once it is this old (from its first batch's timestamp), at the next append.",
        },
        new ConfigDefinition
        {
            Name = "unclean.leader.election.enable",
            Type = ConfigType.Boolean,
            Default = "false",
            Synonyms = [new("unclean.leader.election.enable")],
            Support = ConfigSupport.DefaultOnly,
            Refusal = "a single node has no out-of-sync replica to elect",
            Documentation = "Kafka may elect an out-of-sync replica when true; a single node has none, so Moldau accepts only false.",
        });

    /// <summary>The definition of topic config <paramref name="name"/>, or null for a name Kafka's LogConfig doesn't know.</summary>
    public static ConfigDefinition? Find(string name) => All.GetValueOrDefault(name);

    /// <summary>
    /// Checks one topic config as Kafka's LogConfig does: a known name and, unless
    /// <paramref name="value"/> is null (a delete), a value of its type within its bounds. Null
    /// when it is fine, else Kafka's message for INVALID_CONFIG.
    /// </summary>
    public static string? Validate(string name, string? value) =>
        Find(name) is not { } definition ? $"Unknown topic config name: {name}"
        : value is null ? null
        : definition.Validate(value);

    /// <summary>The topic configs a broker key supplies the default of (a key may serve several only in theory).</summary>
    public static IEnumerable<ConfigDefinition> ServedBy(string brokerKey) =>
        All.Values.Where(d => d.Synonyms.Any(s => s.Name == brokerKey));

    private static Dictionary<string, ConfigDefinition> Build(params ConfigDefinition[] definitions) =>
        definitions.OrderBy(d => d.Name, StringComparer.Ordinal).ToDictionary(d => d.Name, d => d with { Dynamic = true }, StringComparer.Ordinal);
}
