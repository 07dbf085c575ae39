using System.Collections.Frozen;
using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>
/// A topic in one <see cref="MetadataImage"/>: its name, id, configs and partitions, none of which
/// change once the image is published (a change makes a new <see cref="TopicInfo"/> in a new image).
/// </summary>
internal sealed class TopicInfo
{
    private static readonly FrozenDictionary<string, string> NoConfigs = FrozenDictionary<string, string>.Empty;

    /// <summary>A topic without partitions or configs.</summary>
    public TopicInfo(string name, Uuid id)
        : this(name, id, NoConfigs, _ => [])
    {
    }

    /// <summary>A topic whose partitions <paramref name="partitions"/> makes, given the topic they belong to.</summary>
    public TopicInfo(string name, Uuid id, IReadOnlyDictionary<string, string> configs, Func<TopicInfo, PartitionState[]> partitions)
    {
        Name = name;
        Id = id;
        Configs = configs;
        Partitions = partitions(this);
    }

    /// <summary>The topic's name.</summary>
    public string Name { get; }

    /// <summary>The topic's id.</summary>
    public Uuid Id { get; }

    /// <summary>True for Kafka's internal topics (<see cref="InternalTopics.IsInternal"/>).</summary>
    public bool IsInternal => InternalTopics.IsInternal(Name);

    /// <summary>Partitions by index (not to be written to).</summary>
    public PartitionState[] Partitions { get; }

    /// <summary>Topic configs from ConfigRecords (key to value); never changed in place.</summary>
    public IReadOnlyDictionary<string, string> Configs { get; }

    /// <summary>The partition with <paramref name="index"/>, or null.</summary>
    public PartitionState? Partition(int index)
    {
        var partitions = Partitions;
        return (uint)index < (uint)partitions.Length ? partitions[index] : null;
    }
}

/// <summary>
/// One partition in one <see cref="MetadataImage"/>: what the metadata log says of it (leader,
/// epochs, replicas), fixed once published, and the <see cref="PartitionHost"/> it shares with
/// the same partition in every other image: its log and the waiters on it.
/// </summary>
internal sealed class PartitionState
{
    /// <summary>A partition with a host of its own (tests, and a partition seen for the first time).</summary>
    public PartitionState(TopicInfo topic, int index, int leaderEpoch)
        : this(topic, index, leaderEpoch, new PartitionHost())
    {
    }

    /// <summary>A partition of <paramref name="topic"/> served through <paramref name="host"/>.</summary>
    public PartitionState(TopicInfo topic, int index, int leaderEpoch, PartitionHost host)
    {
        Topic = topic;
        Index = index;
        LeaderEpoch = leaderEpoch;
        Host = host;
    }

    /// <summary>The topic this partition belongs to.</summary>
    public TopicInfo Topic { get; }

    /// <summary>The partition's index.</summary>
    public int Index { get; }

    /// <summary>The current leader epoch.</summary>
    public int LeaderEpoch { get; }

    /// <summary>The partition epoch (bumped on every change of the partition's record).</summary>
    public int PartitionEpoch { get; init; }

    /// <summary>The leader the metadata log names (-1: none).</summary>
    public int Leader { get; init; } = -1;

    /// <summary>The in-sync replicas the metadata log names.</summary>
    public IReadOnlyList<int> Isr { get; init; } = [];

    /// <summary>The replicas the metadata log names.</summary>
    public IReadOnlyList<int> Replicas { get; init; } = [];

    /// <summary>What this partition keeps across images: its log, its offline state, its waiters.</summary>
    public PartitionHost Host { get; }

    /// <summary>
    /// The log if it is open: null while offline, and also while start-up has not opened it yet.
    /// Handlers take the log through <see cref="TopicRegistry.LogOf"/>, which opens it on demand.
    /// Long-polling fetches wake when its high watermark moves.
    /// </summary>
    public IPartitionLog? Log => Host.Log;

    /// <summary>
    /// Why the log could not be opened (an unwritable directory, a full disk), while the partition
    /// is offline: it answers KAFKA_STORAGE_ERROR and Metadata shows it without a leader. Null when open.
    /// </summary>
    public string? OfflineReason => Host.OfflineReason;

    /// <summary>True while the log could not be opened.</summary>
    public bool IsOffline => Host.IsOffline;

    /// <summary>A task that completes at the next append (for long-polling fetches). Take it before reading the log.</summary>
    public Task NextAppend => Host.NextAppend;

    /// <summary>The partition as the log manager knows it.</summary>
    public LogPartition LogPartition => new(Topic.Name, Topic.Id, Index);

    /// <summary>Records a failed read; true for the first of a run, so it is logged once rather than per fetch.</summary>
    public bool ReadFailed() => Host.ReadFailed();

    /// <summary>Ends a run of failed reads.</summary>
    public void ReadSucceeded() => Host.ReadSucceeded();

    /// <summary>Wakes the fetches waiting for data on this partition.</summary>
    public void SignalAppend() => Host.SignalAppend();
}
