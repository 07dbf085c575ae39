using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;
using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>
/// Opening partition logs after start-up. The broker serves as soon as the metadata image is
/// published; the logs are opened in the background, <c>num.recovery.threads.per.data.dir</c>
/// per log dir at a time, and whoever needs a log before the background reached it opens it
/// (<see cref="LogOf"/>): once, with concurrent requesters waiting for that one open. A log that
/// lost records to recovery gets its new leader epoch before anyone sees it.
/// </summary>
internal sealed partial class TopicRegistry
{
    private readonly CancellationTokenSource _stopOpening = new();
    private Task _background = Task.CompletedTask;
    private HashSet<PartitionHost> _holes = [];
    private int _opensUnderWay;
    private int _stopped;

    /// <summary>The background pass over the logs start-up did not open (completes when all were, or at stop).</summary>
    public Task BackgroundOpening => _background;

    /// <summary>
    /// The partition's log, opened now if start-up has not opened it yet (the caller waits for
    /// it; requesters of the same log wait for the same open). For an offline partition, tries to
    /// open it again (at most every few seconds), so a partition whose disk was full or unwritable
    /// comes back without a restart. Null while offline, once the partition is gone, and after stop.
    /// </summary>
    public IPartitionLog? LogOf(PartitionState partition)
    {
        var host = partition.Host;
        if (host.Log is { } open)
        {
            return open;
        }

        return host.IsGone || (host.IsOffline && _time.GetTimestamp() < host.RetryOpenAt) ? null : Open(partition, wait: true);
    }

    /// <summary>
    /// <see cref="LogOf(PartitionState)"/> for a handler about to use the partition's leader epoch:
    /// when the log had to be opened, <paramref name="partition"/> becomes the partition as the
    /// current image has it (recovery that cut records gave it a new epoch).
    /// </summary>
    public IPartitionLog? LogOf(ref PartitionState partition)
    {
        if (partition.Log is { } open)
        {
            return open;
        }

        var log = LogOf(partition);
        if (log is not null && Current(partition) is { } current)
        {
            partition = current;
        }

        return log;
    }

    /// <summary>
    /// Opens the log of <paramref name="partition"/> unless it is open, gone, offline until its
    /// next retry, or being opened by someone else (then waits for that open when
    /// <paramref name="wait"/>, else returns at once).
    /// </summary>
    private IPartitionLog? Open(PartitionState partition, bool wait)
    {
        var host = partition.Host;
        if (!host.TryBeginOpen(out var underWay))
        {
            if (wait)
            {
                underWay.GetAwaiter().GetResult();
            }

            return host.Log;
        }

        try
        {
            if (host.Log is { } open)
            {
                return open;
            }

            if (host.IsGone || (host.IsOffline && _time.GetTimestamp() < host.RetryOpenAt) || !EnterOpen())
            {
                return null;
            }

            try
            {
                return OpenClaimed(partition);
            }
            finally
            {
                Interlocked.Decrement(ref _opensUnderWay);
            }
        }
        finally
        {
            host.EndOpen();
        }
    }

    /// <summary>Counts an open under way; false once <see cref="StopOpening"/> began (no open starts after it).</summary>
    private bool EnterOpen()
    {
        Interlocked.Increment(ref _opensUnderWay);
        if (Volatile.Read(ref _stopped) == 0)
        {
            return true;
        }

        Interlocked.Decrement(ref _opensUnderWay);
        return false;
    }

    /// <summary>
    /// Opens the log (outside the change lock: it may read a log through after a crash), then,
    /// under the lock, publishes it to the partition as the current image has it: with a new
    /// leader epoch first when recovery cut records, or removes it again when the partition was
    /// deleted meanwhile.
    /// </summary>
    private IPartitionLog? OpenClaimed(PartitionState partition)
    {
        var host = partition.Host;
        if (Current(partition) is not { } current || _applier.OpenOrTakeOfflineUnpublished(current) is not { } log)
        {
            return null;
        }

        lock (_changeLock)
        {
            current = Current(partition);
            if (current is null || host.IsGone)
            {
                _applier.Logs.Delete(partition.LogPartition, log);
                return null;
            }

            if (log is PartitionLog { RecoveryLostRecords: true } local)
            {
                current = BumpLeaderEpochAfterTruncation(current, local);
            }

            _applier.Publish(current, log);
            log.StartEpoch(current.LeaderEpoch);
            return log;
        }
    }

    /// <summary>The partition as the current image has it, when it still has it with the same host.</summary>
    private PartitionState? Current(PartitionState partition) =>
        _image.Find(partition.Topic.Id)?.Partition(partition.Index) is { } current && current.Host == partition.Host ? current : null;

    /// <summary>
    /// Starts opening every log of <paramref name="image"/> in the background, after
    /// <c>moldau.log.background.open.delay.ms</c> (0 unless a test holds it back).
    /// </summary>
    private void OpenInBackground(MetadataImage image)
    {
        var partitions = image.TopicsById.Values.SelectMany(t => t.Partitions).Where(p => p is { Log: null, OfflineReason: null }).ToList();
        var delay = long.TryParse(_options.Properties.GetValueOrDefault("moldau.log.background.open.delay.ms"), out var ms) && ms > 0 ? ms : 0;
        var threads = RecoveryThreads;
        var stop = _stopOpening.Token;
        _background = Task.Factory.StartNew(
            async () =>
            {
                if (delay > 0)
                {
                    _log.LogInformation("opening {Count} partition logs in the background after {Delay} ms (moldau.log.background.open.delay.ms)", partitions.Count, delay);
                    await Task.Delay(TimeSpan.FromMilliseconds(delay), _time, stop).ConfigureAwait(false);
                }

                try
                {
                    _applier.OpenAll(partitions, threads, p => Open(p, wait: false), stop);
                }
                catch (AggregateException e)
                {
                    // Not a storage refusal (those take one partition offline): the rest open on demand.
                    _log.LogError("opening partition logs in the background failed, the rest open on demand: {Error}", e.InnerException?.Message ?? e.Message);
                }
            },
            stop,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default).Unwrap();
    }

    /// <summary>
    /// Stops the background pass (the logs it is opening finish) and waits for the opens on
    /// demand under way; none starts after.
    /// </summary>
    private void StopOpening()
    {
        Interlocked.Exchange(ref _stopped, 1);
        _stopOpening.Cancel();
        try
        {
            _background.GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
        }

        var spin = new SpinWait();
        while (Volatile.Read(ref _opensUnderWay) > 0)
        {
            spin.SpinOnce(sleep1Threshold: 10);
        }

        _stopOpening.Dispose();
    }

    /// <summary>
    /// A partition whose log lost a torn tail on opening gets a new leader epoch (KIP-101,
    /// KIP-320) before it serves: the records it lost may have been read under the old epoch, and
    /// a client that validates its position with OffsetForLeaderEpoch learns where that epoch now
    /// ends. The change goes to the metadata log (synced) as a PartitionChangeRecord naming this
    /// node as leader, which is how Kafka's controller bumps an epoch, and is applied by the same
    /// replay a restart runs. A partition the metadata log has no PartitionRecord for gets one
    /// instead, since a change to it would not replay. Called under the change lock.
    /// </summary>
    private PartitionState BumpLeaderEpochAfterTruncation(PartitionState p, PartitionLog log)
    {
        var topic = p.Topic;
        if (log.CorruptionAfterCleanStop is { } corruption)
        {
            _log.LogError("{Topic}-{Partition}: {Corruption}; the log goes on from offset {End} under a new leader epoch", topic.Name, p.Index, corruption, log.LogEndOffset);
        }

        _log.LogWarning(
            "recovery cut {Bytes} bytes from the tail of {Topic}-{Partition} (log end now {End}): leader epoch {Epoch} -> {Next}",
            log.RecoveredTruncatedBytes, topic.Name, p.Index, log.LogEndOffset, p.LeaderEpoch, p.LeaderEpoch + 1);
        IKafkaMessage record = _holes.Remove(p.Host)
            ? new PartitionRecord
            {
                PartitionId = p.Index,
                TopicId = topic.Id,
                Replicas = [_options.NodeId],
                Isr = [_options.NodeId],
                Leader = _options.NodeId,
                LeaderEpoch = p.LeaderEpoch + 1,
                PartitionEpoch = p.PartitionEpoch + 1,
            }
            : new PartitionChangeRecord { PartitionId = p.Index, TopicId = topic.Id, Leader = _options.NodeId };
        return CommitAndPublish([record]).Find(topic.Id)?.Partition(p.Index) ?? p;
    }
}
