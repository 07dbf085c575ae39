using System.Globalization;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Storage.Cleaning;

namespace Moldau.Broker.Retention;

/// <summary>
/// Log compaction for logs whose cleanup.policy includes "compact" (<c>__consumer_offsets</c>
/// among them), run every <c>log.cleaner.backoff.ms</c>: a log is cleaned when its dirty ratio
/// reaches min.cleanable.dirty.ratio or a tombstone's delete horizon has passed
/// (<see cref="Moldau.Storage.IPartitionLog.CleanIfDirty"/>).
/// </summary>
internal sealed class CompactionPolicy(BrokerState state)
{
    /// <summary>Cleans every compacted partition that needs it, once.</summary>
    public void Run()
    {
        var cleaned = false;
        foreach (var topic in state.Topics.Topics.ToList())
        {
            var policy = Setting(topic, "cleanup.policy", "log.cleanup.policy") ?? "delete";
            if (!policy.Contains("compact", StringComparison.Ordinal))
            {
                continue;
            }

            var settings = new CleanerSettings
            {
                DeleteRetentionMs = Math.Max(0, long.TryParse(Setting(topic, "delete.retention.ms", "log.cleaner.delete.retention.ms"), CultureInfo.InvariantCulture, out var ms) ? ms : 86_400_000),
                MinCleanableDirtyRatio = double.TryParse(Setting(topic, "min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio"), CultureInfo.InvariantCulture, out var ratio) ? ratio : 0.5,
            };
            foreach (var partition in topic.Partitions)
            {
                if (partition.Log is not { } log)
                {
                    continue;
                }

                try
                {
                    var ran = log.CleanIfDirty(settings);
                    cleaned |= ran is not null;
                    if (ran is { SegmentsRewritten: > 0 } result)
                    {
                        state.Log.LogInformation(
                            "cleaner: {Topic}-{Partition} {Segments} segments, {Before} -> {After} bytes, {Removed} records removed",
                            topic.Name,
                            partition.Index,
                            result.SegmentsRewritten,
                            result.BytesBefore,
                            result.BytesAfter,
                            result.RecordsRemoved);
                    }
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or KafkaProtocolException)
                {
                    // The log stays as it was; the next round tries again.
                    state.Log.LogWarning("cleaning {Topic}-{Partition} failed: {Error}", topic.Name, partition.Index, e.Message);
                }
            }
        }

        if (cleaned)
        {
            // How far each log was cleaned survives a restart, as Kafka's cleaner-offset-checkpoint.
            state.Topics.WriteCleanerOffsets();
        }
    }

    private string? Setting(TopicInfo topic, string topicKey, string brokerKey) =>
        topic.Configs.GetValueOrDefault(topicKey)
        ?? state.Topics.BrokerConfigs.GetValueOrDefault(brokerKey)
        ?? state.Options.Properties.GetValueOrDefault(brokerKey);
}
