using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>A topic as the metadata log describes it, with its open partitions.</summary>
internal sealed class TopicInfo(string name, Uuid id)
{
    /// <summary>The topic's name.</summary>
    public string Name { get; } = name;

    /// <summary>The topic's id.</summary>
    public Uuid Id { get; } = id;

    /// <summary>True for Kafka's internal topics (<see cref="InternalTopics.IsInternal"/>).</summary>
    public bool IsInternal => InternalTopics.IsInternal(Name);

    /// <summary>Partitions by index; replaced whole when partitions are added.</summary>
    public PartitionState[] Partitions { get; set; } = [];

    /// <summary>Topic configs from ConfigRecords (key to value).</summary>
    public Dictionary<string, string> Configs { get; } = new(StringComparer.Ordinal);

    /// <summary>The partition with <paramref name="index"/>, or null.</summary>
    public PartitionState? Partition(int index)
    {
        var partitions = Partitions;
        return (uint)index < (uint)partitions.Length ? partitions[index] : null;
    }
}

/// <summary>One partition: its leader epoch and its log.</summary>
internal sealed class PartitionState(TopicInfo topic, int index, int leaderEpoch)
{
    private TaskCompletionSource _appended = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The topic this partition belongs to.</summary>
    public TopicInfo Topic { get; } = topic;

    /// <summary>The partition's index.</summary>
    public int Index { get; } = index;

    /// <summary>The current leader epoch.</summary>
    public int LeaderEpoch { get; set; } = leaderEpoch;

    /// <summary>The partition epoch (bumped on every change of the partition's record).</summary>
    public int PartitionEpoch { get; set; }

    /// <summary>The leader the metadata log names (-1: none).</summary>
    public int Leader { get; set; } = -1;

    /// <summary>The in-sync replicas the metadata log names.</summary>
    public IReadOnlyList<int> Isr { get; set; } = [];

    private IPartitionLog? _log;

    /// <summary>The log; null until opened. Long-polling fetches wake when its high watermark moves.</summary>
    public IPartitionLog? Log
    {
        get => _log;
        set
        {
            _log = value;
            if (value is not null)
            {
                value.OnHighWatermarkAdvanced = SignalAppend;
            }
        }
    }

    /// <summary>
    /// Why the log could not be opened (an unwritable directory, a full disk), while the partition
    /// is offline: it answers KAFKA_STORAGE_ERROR and Metadata shows it without a leader. Null when open.
    /// </summary>
    public string? OfflineReason { get; set; }

    /// <summary>When (<see cref="TimeProvider.GetTimestamp"/>) an offline partition may next try to open its log.</summary>
    public long RetryOpenAt { get; set; }

    /// <summary>True while the log could not be opened.</summary>
    public bool IsOffline => Log is null && OfflineReason is not null;

    private int _readFailing;

    /// <summary>Records a failed read; true for the first of a run, so it is logged once rather than per fetch.</summary>
    public bool ReadFailed() => Interlocked.Exchange(ref _readFailing, 1) == 0;

    /// <summary>Ends a run of failed reads.</summary>
    public void ReadSucceeded()
    {
        if (Volatile.Read(ref _readFailing) != 0)
        {
            Volatile.Write(ref _readFailing, 0);
        }
    }

    /// <summary>The partition's log, which must be open.</summary>
    public IPartitionLog OpenLog => Log ?? throw new InvalidOperationException($"{Topic.Name}-{Index} is not open");

    private int _taken;

    /// <summary>A task that completes at the next append (for long-polling fetches). Take it before reading the log.</summary>
    public Task NextAppend
    {
        get
        {
            // Noted before the task is read: an append after this point completes it.
            Interlocked.Exchange(ref _taken, 1);
            return Volatile.Read(ref _appended).Task;
        }
    }

    /// <summary>
    /// Wakes the fetches waiting for data on this partition. When nobody took the task since the
    /// last signal there is nobody to wake, and the task stays for the next one: whoever takes it
    /// from now on reads the log after this append was published.
    /// </summary>
    public void SignalAppend()
    {
        if (Interlocked.Exchange(ref _taken, 0) == 0)
        {
            return;
        }

        var fresh = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Interlocked.Exchange(ref _appended, fresh).TrySetResult();
    }
}
