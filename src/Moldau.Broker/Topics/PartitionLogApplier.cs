using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Moldau.Protocol;
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

    /// <summary>Logs created for partitions whose records are about to be committed (<see cref="CreateLogs"/>).</summary>
    private readonly ConcurrentDictionary<LogPartition, IPartitionLog> _created = new();

    /// <summary>The log manager the partitions' logs come from.</summary>
    public ILogManager Logs => logs;

    /// <summary>
    /// Creates the logs of partitions <paramref name="indexes"/> of a topic before their records
    /// are written, all or none (<see cref="ILogManager.Create"/>): null when they were, else why
    /// not (one log line). The records' commit then takes them (<see cref="OpenOrTakeOffline"/>);
    /// <see cref="DropCreated"/> removes any it did not take.
    /// </summary>
    public string? CreateLogs(string topic, Uuid topicId, IReadOnlyDictionary<string, string> configs, IEnumerable<int> indexes)
    {
        var partitions = indexes.Select(i => new LogPartition(topic, topicId, i)).ToList();
        try
        {
            var made = logs.Create(partitions, configs);
            for (var i = 0; i < partitions.Count; i++)
            {
                _created[partitions[i]] = made[i];
            }

            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            log.LogError("{Topic}: {Count} partition(s) not created, answering KAFKA_STORAGE_ERROR: a log could not be created: {Error}", topic, partitions.Count, e.Message);
            return e.Message;
        }
    }

    /// <summary>Removes the logs <see cref="CreateLogs"/> made that no commit took (the commit failed).</summary>
    public void DropCreated()
    {
        foreach (var partition in _created.Keys)
        {
            if (_created.TryRemove(partition, out var orphan))
            {
                logs.Delete(partition, orphan);
            }
        }
    }

    /// <summary>
    /// Opens the logs of the partitions <paramref name="changes"/> add (before publishing). A
    /// partition the image had before keeps its state: one start-up has not opened yet is opened
    /// on demand or in the background, not here under the change lock.
    /// </summary>
    public void OpenAdded(IEnumerable<(TopicInfo? Before, TopicInfo? After)> changes)
    {
        foreach (var (before, after) in changes)
        {
            foreach (var partition in after?.Partitions ?? [])
            {
                if (partition is { Log: null, OfflineReason: null } && before?.Partition(partition.Index)?.Host != partition.Host)
                {
                    OpenOrTakeOffline(partition);
                }
            }
        }
    }

    /// <summary>How often <see cref="OpenAll"/> says how far it got.</summary>
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Opens the logs of <paramref name="partitions"/> through <paramref name="open"/> (which skips
    /// those already opened on demand), <paramref name="threads"/> at a time (Kafka's
    /// <c>num.recovery.threads.per.data.dir</c> per log dir): opening is mostly waiting for reads
    /// and fsyncs of files of its own, and after a crash each log is read through from its
    /// recovery point on a thread of its own. One log line when it starts, one every few seconds
    /// while it runs, one at the end (or when <paramref name="stop"/> ends it early).
    /// </summary>
    public void OpenAll(IReadOnlyList<PartitionState> partitions, int threads, Action<PartitionState> open, CancellationToken stop)
    {
        if (partitions.Count == 0)
        {
            return;
        }

        var started = time.GetTimestamp();
        var opened = 0;
        log.LogInformation("opening {Count} partition logs in the background, {Threads} at a time", partitions.Count, threads);
        using (time.CreateTimer(
            _ => log.LogInformation("opened {Opened} of {Count} partition logs ({Seconds:F1} s)", Volatile.Read(ref opened), partitions.Count, time.GetElapsedTime(started).TotalSeconds),
            null, ProgressInterval, ProgressInterval))
        {
            try
            {
                Parallel.ForEach(partitions, new ParallelOptions { MaxDegreeOfParallelism = threads, CancellationToken = stop }, partition =>
                {
                    open(partition);
                    Interlocked.Increment(ref opened);
                });
            }
            catch (OperationCanceledException)
            {
                log.LogInformation("stopped opening partition logs: {Opened} of {Count} opened in {Seconds:F1} s, the rest open on demand", Volatile.Read(ref opened), partitions.Count, time.GetElapsedTime(started).TotalSeconds);
                return;
            }
        }

        log.LogInformation("opened {Count} partition logs in {Seconds:F1} s", partitions.Count, time.GetElapsedTime(started).TotalSeconds);
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
                else if (gone.Host.MarkGone())
                {
                    // Not opened (yet, or offline): its directory goes without opening it.
                    logs.Delete(gone.LogPartition, null);
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
        if (_created.TryRemove(partition.LogPartition, out var created))
        {
            Publish(partition, created);
        }
        else if (OpenOrTakeOfflineUnpublished(partition) is { } opened)
        {
            Publish(partition, opened);
        }
    }

    /// <summary>
    /// Opens a partition's log without publishing it (outside the change lock; the caller holds
    /// the partition's open claim); when the storage refuses, the partition goes offline (one log
    /// line) and null comes back.
    /// </summary>
    public IPartitionLog? OpenOrTakeOfflineUnpublished(PartitionState partition)
    {
        var host = partition.Host;
        try
        {
            return logs.Open(partition.LogPartition, partition.Topic.Configs);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (host.OfflineReason is null)
            {
                log.LogError("{Topic}-{Partition} is offline, answering KAFKA_STORAGE_ERROR: its log could not be opened: {Error}", partition.Topic.Name, partition.Index, e.Message);
            }

            host.RetryOpenAt = time.GetTimestamp() + (long)(RetryOpenInterval.TotalSeconds * time.TimestampFrequency);
            host.OfflineReason = e.Message;
            return null;
        }
    }

    /// <summary>
    /// Makes an opened log the partition's (under the change lock): the topic's settings with the
    /// dynamic broker configs over them, and the partition back online if it was offline.
    /// </summary>
    public void Publish(PartitionState partition, IPartitionLog opened)
    {
        var host = partition.Host;
        host.Log = opened;

        // Opened over the topic's configs and server.properties; dynamic broker configs too.
        if (SettingsOf is not null)
        {
            opened.Reconfigure(SettingsOf(partition.Topic));
        }

        if (host.OfflineReason is not null)
        {
            log.LogInformation("{Topic}-{Partition} is back online", partition.Topic.Name, partition.Index);
            host.OfflineReason = null;
        }
    }
}
