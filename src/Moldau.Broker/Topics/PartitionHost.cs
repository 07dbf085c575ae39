using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>
/// What a partition keeps while metadata images come and go: its open log (set by
/// <see cref="PartitionLogApplier"/>, under the registry's change lock), why it is offline, the
/// one open of its log under way, and the fetches waiting for its next append. Every
/// <see cref="PartitionState"/> of the partition, in whichever image, shares one host.
/// A log that start-up has not opened yet is neither open nor offline nor gone:
/// <see cref="TopicRegistry.LogOf"/> opens it on demand.
/// </summary>
internal sealed class PartitionHost
{
    // Made by the first fetch that waits (an idle partition never needs one: 88 B less each).
    private TaskCompletionSource? _appended;
    private volatile IPartitionLog? _log;
    private volatile string? _offlineReason;
    private int _readFailing;
    private int _taken;
    private TaskCompletionSource? _opening;
    private int _gone;

    /// <summary>Bytes, records and requests clients moved through this partition (for /metrics).</summary>
    public Metrics.PartitionTraffic Traffic { get; } = new();

    /// <summary>The log; null until opened (or while offline, or once the partition is gone).</summary>
    public IPartitionLog? Log
    {
        get => _log;
        set
        {
            if (value is not null)
            {
                value.OnHighWatermarkAdvanced = SignalAppend;
            }

            _log = value;
        }
    }

    /// <summary>Why the log could not be opened, while the partition is offline; null otherwise.</summary>
    public string? OfflineReason
    {
        get => _offlineReason;
        set => _offlineReason = value;
    }

    /// <summary>When (<see cref="TimeProvider.GetTimestamp"/>) an offline partition may next try to open its log.</summary>
    public long RetryOpenAt { get; set; }

    /// <summary>True while the log could not be opened.</summary>
    public bool IsOffline => Log is null && OfflineReason is not null;

    /// <summary>True once the partition was removed (its topic deleted): its log is never opened again.</summary>
    public bool IsGone => Volatile.Read(ref _gone) != 0;

    /// <summary>
    /// Marks the partition removed; true when no open of its log is under way, so the caller
    /// removes what is on disk. When one is, its opener finds the partition gone and removes it.
    /// (Both sides use full fences: one of them always sees the other.)
    /// </summary>
    public bool MarkGone()
    {
        Interlocked.Exchange(ref _gone, 1);
        return Volatile.Read(ref _opening) is null;
    }

    /// <summary>
    /// Claims the one open of the log: true for the caller that opens it (it calls
    /// <see cref="EndOpen"/> when done); false with the open under way to wait for.
    /// </summary>
    public bool TryBeginOpen(out Task underWay)
    {
        var mine = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var other = Interlocked.CompareExchange(ref _opening, mine, null);
        underWay = other?.Task ?? Task.CompletedTask;
        return other is null;
    }

    /// <summary>Ends the open claimed by <see cref="TryBeginOpen"/> and wakes whoever waits for it.</summary>
    public void EndOpen() => Interlocked.Exchange(ref _opening, null)?.TrySetResult();

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

    /// <summary>A task that completes at the next append (for long-polling fetches). Take it before reading the log.</summary>
    public Task NextAppend
    {
        get
        {
            // The task first, then the note that someone holds it: a signal after the note completes
            // this task (or a later one made after it was completed), and an append whose signal came
            // before the note is already in the log the caller reads next. Noting first would let a
            // signal clear the note between it and a task made here, which the next signal would then
            // skip, leaving the caller waiting out its timeout.
            var task = Volatile.Read(ref _appended) is { } appended
                ? appended.Task
                : MakeTask();
            Interlocked.Exchange(ref _taken, 1);
            return task;
        }
    }

    private Task MakeTask()
    {
        var made = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return (Interlocked.CompareExchange(ref _appended, made, null) ?? made).Task;
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

        // The next waiter makes a fresh task.
        Interlocked.Exchange(ref _appended, null)?.TrySetResult();
    }
}
