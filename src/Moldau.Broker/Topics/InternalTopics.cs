using System.Globalization;
using Moldau.Coordinator;

namespace Moldau.Broker.Topics;

/// <summary>
/// The topic names Kafka keeps for itself, in one place. <c>__cluster_metadata</c> is the
/// KRaft metadata log and never a topic: Metadata and Produce answer UNKNOWN_TOPIC_OR_PARTITION
/// and CreateTopics INVALID_REQUEST, as Kafka's controller does. <c>__consumer_offsets</c> and
/// <c>__transaction_state</c> are internal topics (Kafka's <c>Topic.isInternal</c>): only the
/// broker creates them, with its own partition count and settings, and a client's Produce to
/// them gets INVALID_TOPIC_EXCEPTION ("Cannot append to internal topic").
/// </summary>
internal static class InternalTopics
{
    /// <summary>The KRaft metadata log's topic name, reserved.</summary>
    public const string ClusterMetadata = "__cluster_metadata";

    /// <summary>Committed offsets and group metadata.</summary>
    public const string ConsumerOffsets = OffsetsTopic.Name;

    /// <summary>Transaction coordinator state.</summary>
    public const string TransactionState = "__transaction_state";

    /// <summary>Kafka's default for offsets.topic.segment.bytes and transaction.state.log.segment.bytes (100 MiB).</summary>
    private const long DefaultSegmentBytes = 104_857_600;

    /// <summary>True for the metadata log's name, which no client may create, read or write as a topic.</summary>
    public static bool IsReserved(string? name) => name == ClusterMetadata;

    /// <summary>True for the internal topics (Kafka's <c>Topic.isInternal</c>).</summary>
    public static bool IsInternal(string? name) => name is ConsumerOffsets or TransactionState;

    /// <summary>
    /// How the broker creates internal topic <paramref name="name"/>: its partition count and
    /// topic configs from the broker's own keys (offsets.topic.* or transaction.state.log.*),
    /// whatever a client asked for.
    /// </summary>
    public static (int Partitions, Dictionary<string, string> Configs) Settings(string name, BrokerOptions options)
    {
        var (partitions, segmentBytes) = name switch
        {
            ConsumerOffsets => (options.OffsetsTopicNumPartitions, Long(options, "offsets.topic.segment.bytes", DefaultSegmentBytes)),
            TransactionState => ((int)Math.Clamp(Long(options, "transaction.state.log.num.partitions", 50), 1, CreateTopicsLimit), Long(options, "transaction.state.log.segment.bytes", DefaultSegmentBytes)),
            _ => throw new ArgumentException($"{name} is not an internal topic", nameof(name)),
        };
        var configs = new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["cleanup.policy"] = "compact",
            ["segment.bytes"] = segmentBytes.ToString(CultureInfo.InvariantCulture),
        };
        if (name == ConsumerOffsets)
        {
            configs["compression.type"] = "producer";
        }

        return (partitions, configs);
    }

    /// <summary>The partitions one topic may have (CreateTopics' limit applies to internal topics too).</summary>
    private const int CreateTopicsLimit = Handlers.CreateTopicsHandler.MaxPartitions;

    private static long Long(BrokerOptions options, string key, long fallback) =>
        options.Properties.TryGetValue(key, out var value) && long.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var parsed) && parsed > 0 ? parsed : fallback;
}
