using Microsoft.Extensions.Logging;
using Moldau.Broker.Configuration;
using Moldau.Protocol;

namespace Moldau.Broker.Retention;

/// <summary>
/// Log compaction for logs whose cleanup.policy includes "compact" (<c>__consumer_offsets</c>
/// among them), run every <c>log.cleaner.backoff.ms</c>: a log is cleaned when its dirty ratio
/// reaches min.cleanable.dirty.ratio, a tombstone's delete horizon has passed, or its oldest
/// dirty record is older than max.compaction.lag.ms; segments with records younger than
/// min.compaction.lag.ms wait (<see cref="Moldau.Storage.IPartitionLog.CleanIfDirty"/>).
/// </summary>
internal sealed class CompactionPolicy(BrokerState state)
{
    /// <summary>Cleans every compacted partition that needs it, once.</summary>
    public void Run()
    {
        var cleaned = false;
        foreach (var topic in state.Topics.Topics.ToList())
        {
            foreach (var partition in topic.Partitions)
            {
                // The topic's configs as the log holds them (a change reaches it at once). A log
                // start-up has not opened yet is not opened for this: the next run after it is.
                if (partition.Log is not { } log || log.Options is not { Compact: true } options)
                {
                    continue;
                }

                var settings = ConfigResolver.Cleaner(options);
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
}
