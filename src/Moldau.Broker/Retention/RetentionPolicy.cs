using System.Globalization;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Topics;

namespace Moldau.Broker.Retention;

/// <summary>
/// Time and size retention, as Kafka applies it to logs whose cleanup.policy includes "delete":
/// whole closed segments whose newest record is older than retention.ms go, and the oldest closed
/// segments go while the log is larger than retention.bytes. The log start offset moves to the
/// first remaining segment (and is recorded in the log dir's checkpoint). The active segment is
/// never deleted.
/// </summary>
internal sealed class RetentionPolicy(BrokerState state)
{
    /// <summary>Applies retention to every partition once.</summary>
    public void Run()
    {
        var now = state.Time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var topic in state.Topics.Topics.ToList())
        {
            var policy = Setting(topic, "cleanup.policy", "log.cleanup.policy") ?? "delete";
            if (!policy.Contains("delete", StringComparison.Ordinal))
            {
                continue;
            }

            var retentionMs = RetentionMs(topic);
            var retentionBytes = long.TryParse(Setting(topic, "retention.bytes", "log.retention.bytes"), CultureInfo.InvariantCulture, out var b) ? b : -1;
            foreach (var partition in topic.Partitions)
            {
                if (partition.Log is not { } log)
                {
                    continue;
                }

                var segments = log.Segments();
                var total = segments.Sum(s => s.Size);
                long? newStart = null;
                for (var i = 0; i < segments.Count - 1; i++)
                {
                    var expired = retentionMs >= 0 && segments[i].MaxTimestamp >= 0 && now - segments[i].MaxTimestamp > retentionMs;
                    var tooBig = retentionBytes >= 0 && total - segments[i].Size >= retentionBytes;
                    if (!expired && !tooBig)
                    {
                        break;
                    }

                    total -= segments[i].Size;
                    newStart = segments[i + 1].BaseOffset;
                }

                if (newStart is { } start && start > log.LogStartOffset)
                {
                    try
                    {
                        state.Topics.AdvanceLogStart(partition, start);
                        state.Log.LogInformation("retention: {Topic}-{Partition} now starts at offset {Offset}", topic.Name, partition.Index, start);
                    }
                    catch (IOException e)
                    {
                        state.Log.LogWarning("retention of {Topic}-{Partition} failed: {Error}", topic.Name, partition.Index, e.Message);
                    }
                }
            }
        }
    }

    private long RetentionMs(TopicInfo topic)
    {
        if (topic.Configs.TryGetValue("retention.ms", out var ms) && long.TryParse(ms, CultureInfo.InvariantCulture, out var v))
        {
            return v;
        }

        string? Broker(string key) => state.Topics.BrokerConfigs.GetValueOrDefault(key) ?? state.Options.Properties.GetValueOrDefault(key);
        if (long.TryParse(Broker("log.retention.ms"), CultureInfo.InvariantCulture, out v))
        {
            return v;
        }

        if (long.TryParse(Broker("log.retention.minutes"), CultureInfo.InvariantCulture, out v))
        {
            return v * 60_000;
        }

        return long.TryParse(Broker("log.retention.hours"), CultureInfo.InvariantCulture, out v) ? v * 3_600_000 : 168L * 3_600_000;
    }

    private string? Setting(TopicInfo topic, string topicKey, string brokerKey) =>
        topic.Configs.GetValueOrDefault(topicKey)
        ?? state.Topics.BrokerConfigs.GetValueOrDefault(brokerKey)
        ?? state.Options.Properties.GetValueOrDefault(brokerKey);
}
