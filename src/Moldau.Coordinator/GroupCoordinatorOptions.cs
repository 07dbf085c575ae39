namespace Moldau.Coordinator;

/// <summary>The group coordinator's settings, with Kafka's keys and defaults.</summary>
public sealed class GroupCoordinatorOptions
{
    /// <summary>group.initial.rebalance.delay.ms</summary>
    public int InitialRebalanceDelayMs { get; init; } = 3000;

    /// <summary>group.min.session.timeout.ms</summary>
    public int MinSessionTimeoutMs { get; init; } = 6000;

    /// <summary>group.max.session.timeout.ms</summary>
    public int MaxSessionTimeoutMs { get; init; } = 1800000;

    /// <summary>group.max.size: joins past it get GROUP_MAX_SIZE_REACHED.</summary>
    public int MaxSize { get; init; } = int.MaxValue;

    /// <summary>group.consumer.session.timeout.ms: a consumer-protocol member without a heartbeat that long is removed.</summary>
    public int ConsumerSessionTimeoutMs { get; init; } = 45000;

    /// <summary>group.consumer.heartbeat.interval.ms: how often consumer-protocol members heartbeat.</summary>
    public int ConsumerHeartbeatIntervalMs { get; init; } = 5000;

    /// <summary>group.consumer.assignors: the server-side assignors, the first the default.</summary>
    public IReadOnlyList<string> ConsumerAssignors { get; init; } = ["uniform", "range"];

    /// <summary>group.consumer.max.size</summary>
    public int ConsumerMaxSize { get; init; } = int.MaxValue;

    /// <summary>offsets.topic.num.partitions</summary>
    public int OffsetsTopicPartitions { get; init; } = 50;

    /// <summary>offset.metadata.max.bytes</summary>
    public int OffsetMetadataMaxBytes { get; init; } = 4096;

    /// <summary>offsets.retention.minutes, in ms (7 days).</summary>
    public long OffsetsRetentionMs { get; init; } = 7L * 24 * 60 * 60 * 1000;

    /// <summary>offsets.retention.check.interval.ms: how often each shard looks for expired offsets (0: never).</summary>
    public long OffsetsRetentionCheckIntervalMs { get; init; } = 600_000;
}
