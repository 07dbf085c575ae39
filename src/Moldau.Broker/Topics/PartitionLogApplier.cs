using Microsoft.Extensions.Logging;
using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>
/// Makes the logs follow the metadata image (the part of Kafka's <c>BrokerMetadataPublisher</c>
/// that tells the <c>LogManager</c>): before an image is published, the logs of the partitions
/// it adds are opened through the <see cref="ILogManager"/>; after, the logs of the partitions
/// it removed are deleted, new leader epochs are started, and config changes reach the topic.
/// Called by <see cref="TopicRegistry"/> under its change lock.
/// </summary>
internal sealed class PartitionLogApplier(ILogManager logs, ILogger log, TimeProvider time)
{
    /// <summary>How long an offline partition waits between attempts to open its log.</summary>
    private static readonly TimeSpan RetryOpenInterval = TimeSpan.FromSeconds(5);

    /// <summary>The log manager the partitions' logs come from.</summary>
    public ILogManager Logs => logs;

    /// <summary>Opens the logs of the partitions in <paramref name="changes"/> that have none yet (before publishing).</summary>
    public void OpenAdded(IEnumerable<(TopicInfo? Before, TopicInfo? After)> changes)
    {
        foreach (var (_, after) in changes)
        {
            foreach (var partition in after?.Partitions ?? [])
            {
                if (partition is { Log: null, OfflineReason: null })
                {
                    OpenOrTakeOffline(partition);
                }
            }
        }
    }

    /// <summary>
    /// After an image is published: deletes the logs of partitions it no longer has (waking their
    /// waiting fetches), starts each partition's leader epoch in its log, and applies topic config
    /// changes (<see cref="ApplyTopicConfigs"/>).
    /// </summary>
    public void AfterPublish(IEnumerable<(TopicInfo? Before, TopicInfo? After)> changes)
    {
        foreach (var (before, after) in changes)
        {
            var kept = after?.Partitions.Select(p => p.Host).ToHashSet() ?? [];
            foreach (var gone in before?.Partitions.Where(p => !kept.Contains(p.Host)) ?? [])
            {
                if (gone.Log is { } open)
                {
                    logs.Delete(gone.LogPartition, open);
                }

                gone.SignalAppend();
            }

            foreach (var partition in after?.Partitions ?? [])
            {
                // Idempotent: a log that already knows this epoch (or a newer one) ignores it.
                partition.Log?.StartEpoch(partition.LeaderEpoch);
            }

            if (before is not null && after is not null && !ReferenceEquals(before.Configs, after.Configs))
            {
                ApplyTopicConfigs(before, after);
            }
        }
    }

    /// <summary>
    /// THE place where a changed topic config reaches the topic's open logs: called once per
    /// topic whose configs a published image changed (AlterConfigs, IncrementalAlterConfigs),
    /// with the topic before and after. Logs opened later read the new configs anyway
    /// (<see cref="LogOptions.For"/>).
    /// </summary>
    public void ApplyTopicConfigs(TopicInfo before, TopicInfo after)
    {
        log.LogDebug("topic {Topic}: configs changed ({Before} -> {After} keys)", after.Name, before.Configs.Count, after.Configs.Count);
        Reconfigure(after);
    }

    /// <summary>The log settings a topic's configs resolve to (topic, dynamic broker, server.properties, default).</summary>
    public Func<TopicInfo, PartitionLogOptions>? SettingsOf { get; init; }

    private void Reconfigure(TopicInfo topic)
    {
        if (SettingsOf is null)
        {
            return;
        }

        var settings = SettingsOf(topic);
        foreach (var p in topic.Partitions)
        {
            p?.Log?.Reconfigure(settings);
        }
    }

    /// <summary>
    /// THE place where a changed dynamic broker config (AlterConfigs on the broker resource)
    /// reaches open logs whose topics don't override it: called once per published image whose
    /// broker configs differ from the image before.
    /// </summary>
    public void ApplyBrokerConfigs(MetadataImage image)
    {
        log.LogDebug("broker configs changed ({Keys} dynamic keys)", image.BrokerConfigs.Count);
        foreach (var topic in image.TopicsById.Values)
        {
            Reconfigure(topic);
        }
    }

    /// <summary>
    /// Opens a partition's log; when the storage refuses (an unwritable directory, a segment that
    /// can't be opened, no space), the partition goes offline instead of taking the broker down,
    /// as Kafka takes a failed log dir offline. One log line when it goes offline, one when it's back.
    /// </summary>
    public void OpenOrTakeOffline(PartitionState partition)
    {
        var host = partition.Host;
        try
        {
            host.Log = logs.Open(partition.LogPartition, partition.Topic.Configs);

            // Opened over the topic's configs and server.properties; dynamic broker configs too.
            if (SettingsOf is not null)
            {
                host.Log.Reconfigure(SettingsOf(partition.Topic));
            }
            if (host.OfflineReason is not null)
            {
                log.LogInformation("{Topic}-{Partition} is back online", partition.Topic.Name, partition.Index);
                host.OfflineReason = null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (host.OfflineReason is null)
            {
                log.LogError("{Topic}-{Partition} is offline, answering KAFKA_STORAGE_ERROR: its log could not be opened: {Error}", partition.Topic.Name, partition.Index, e.Message);
            }

            host.RetryOpenAt = time.GetTimestamp() + (long)(RetryOpenInterval.TotalSeconds * time.TimestampFrequency);
            host.OfflineReason = e.Message;
        }
    }
}
