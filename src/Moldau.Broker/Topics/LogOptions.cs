using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>How a partition's log is set up from its topic's configs over the broker's properties.</summary>
internal static class LogOptions
{
    /// <summary>The options of a log opened with <paramref name="topicConfigs"/>, in the state its log dir describes.</summary>
    public static PartitionLogOptions For(BrokerOptions broker, IReadOnlyDictionary<string, string> topicConfigs, LogOpenState state)
    {
        // Moldau syncs before acknowledging acks=all unless Kafka's flush settings are set explicitly.
        var explicitFlush = topicConfigs.ContainsKey("flush.messages") || topicConfigs.ContainsKey("flush.ms")
            || broker.Properties.ContainsKey("log.flush.interval.messages") || broker.Properties.ContainsKey("log.flush.interval.ms");
        var segmentBytes = topicConfigs.TryGetValue("segment.bytes", out var sb) && long.TryParse(sb, out var parsed) ? parsed : broker.LogSegmentBytes;
        return new PartitionLogOptions
        {
            SegmentBytes = segmentBytes,
            SyncBeforeAck = !explicitFlush,
            DirectIo = !string.Equals(broker.Properties.GetValueOrDefault("moldau.log.direct.io"), "false", StringComparison.OrdinalIgnoreCase),
            IndexIntervalBytes = (int)Math.Clamp(Long("index.interval.bytes", "log.index.interval.bytes", 4096), 1, int.MaxValue),
            FileDeleteDelay = TimeSpan.FromMilliseconds(Math.Max(0, Long("file.delete.delay.ms", "log.segment.delete.delay.ms", 60_000))),
            SegmentAge = TimeSpan.FromMilliseconds(Math.Max(1, Long("segment.ms", "log.roll.ms", Long("segment.ms", "log.roll.hours", 168) * 3_600_000))),
            CleanShutdown = state.CleanShutdown,
            RecoveryPoint = state.RecoveryPoint,
            CleanedUpTo = state.CleanedUpTo,
            FlushMessages = Math.Max(1, Long("flush.messages", "log.flush.interval.messages", long.MaxValue)),
            FlushInterval = Long("flush.ms", "log.flush.interval.ms", Long("flush.ms", "log.flush.scheduler.interval.ms", long.MaxValue)) is var ms && ms < 100L * 365 * 24 * 3_600_000
                ? TimeSpan.FromMilliseconds(Math.Max(1, ms))
                : null,
        };

        // A numeric setting: the topic's config, else the broker's property, else the default.
        long Long(string topicKey, string brokerKey, long fallback) =>
            topicConfigs.TryGetValue(topicKey, out var t) && long.TryParse(t, out var fromTopic) ? fromTopic
            : broker.Properties.TryGetValue(brokerKey, out var b) && long.TryParse(b, out var fromBroker) ? fromBroker
            : fallback;
    }
}
