using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Coordinator;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Coordinator;

/// <summary>
/// The coordinator of classic consumer groups: the join and sync rounds (the leader assigns on
/// the client side), heartbeats and session expiry, static membership, and committed offsets.
/// Every durable change is a record appended (and synced) to the group's partition of
/// <c>__consumer_offsets</c> before it is acknowledged; start-up replays those records.
/// </summary>
/// <remarks>One lock guards every group: a single node's coordinator is not a hot path.</remarks>
public sealed partial class GroupCoordinator : IAsyncDisposable
{
    private readonly GroupCoordinatorOptions _options;
    private readonly Func<int, IPartitionLog> _offsetsPartition;
    private readonly Func<string, int, bool> _partitionExists;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Task? _timer;

    /// <summary>Creates the coordinator.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="offsetsPartition">Opens (creating the topic if needed) a partition of __consumer_offsets.</param>
    /// <param name="partitionExists">Whether a topic partition exists (offsets are committed only for those).</param>
    /// <param name="time">The clock.</param>
    /// <param name="log">Where to log.</param>
    public GroupCoordinator(GroupCoordinatorOptions options, Func<int, IPartitionLog> offsetsPartition, Func<string, int, bool> partitionExists, TimeProvider time, ILogger log)
    {
        _options = options;
        _offsetsPartition = offsetsPartition;
        _partitionExists = partitionExists;
        _time = time;
        _log = log;
    }

    private long Now => _time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>Replays __consumer_offsets (the partitions that exist) and starts the session timer.</summary>
    public void Start(IEnumerable<IPartitionLog> existingPartitions)
    {
        var offsets = 0;
        lock (_lock)
        {
            foreach (var log in existingPartitions)
            {
                foreach (var entry in OffsetsTopic.Replay(log, _log))
                {
                    switch (entry)
                    {
                        case OffsetsTopic.OffsetEntry o:
                            {
                                var g = GetOrCreate(o.Group);
                                if (o.Offset is null)
                                {
                                    g.Offsets.Remove((o.Topic, o.Partition));
                                }
                                else
                                {
                                    g.Offsets[(o.Topic, o.Partition)] = o.Offset;
                                    offsets++;
                                }

                                break;
                            }

                        case OffsetsTopic.GroupEntry ge when ge.Value is null:
                            _groups.Remove(ge.Group);
                            break;
                        case OffsetsTopic.GroupEntry ge:
                            {
                                // Members come back by rejoining; the generation and protocol carry on.
                                var g = GetOrCreate(ge.Group);
                                g.GenerationId = ge.Value!.Generation;
                                g.ProtocolType = ge.Value.ProtocolType;
                                g.ProtocolName = ge.Value.Protocol;
                                break;
                            }
                    }
                }
            }
        }

        _log.LogInformation("group coordinator loaded {Groups} groups, {Offsets} committed offsets", _groups.Count, offsets);
        _timer = RunTimerAsync(_stop.Token);
    }

    private Group GetOrCreate(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var g) || g.State == GroupState.Dead)
        {
            _groups[groupId] = g = new Group(groupId) { StateTimestamp = Now };
        }

        return g;
    }

    private async Task RunTimerAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(100), _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                try
                {
                    Tick();
                }
                catch (Exception e) when (e is IOException or ObjectDisposedException)
                {
                    _log.LogError("group coordinator tick failed: {Error}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Expires members whose sessions lapsed and ends join phases that are due.</summary>
    internal void Tick()
    {
        lock (_lock)
        {
            var now = Now;
            foreach (var g in _groups.Values.ToList())
            {
                foreach (var (pending, expires) in g.PendingMembers.ToList())
                {
                    if (now >= expires)
                    {
                        _log.LogInformation("pending member {Member} of group {Group} removed: it did not rejoin within its session timeout", pending, g.Id);
                        g.PendingMembers.Remove(pending);
                    }
                }

                foreach (var m in g.Members.Values.ToList())
                {
                    if (m.PendingJoin is null && now - m.LastHeartbeat > m.SessionTimeoutMs)
                    {
                        _log.LogInformation("member {Member} of group {Group} expired after {Timeout} ms without a heartbeat", m.MemberId, g.Id, m.SessionTimeoutMs);
                        RemoveMember(g, m);
                        AfterMemberLeft(g);
                    }
                }

                if ((g.State is GroupState.CompletingRebalance or GroupState.Stable) && g.PendingSyncMembers.Count > 0 && now >= g.SyncDeadline)
                {
                    _log.LogInformation("group {Group} removes {Count} members that sent no SyncGroup within the rebalance timeout", g.Id, g.PendingSyncMembers.Count);
                    foreach (var id in g.PendingSyncMembers.ToList())
                    {
                        if (g.Members.TryGetValue(id, out var silent))
                        {
                            RemoveMember(g, silent);
                        }
                    }

                    g.PendingSyncMembers.Clear();
                    AfterMemberLeft(g);
                    continue;
                }

                if (g.State == GroupState.PreparingRebalance)
                {
                    if (now >= g.JoinDeadline)
                    {
                        // Dynamic members that did not rejoin in time are dropped; static ones
                        // stay (KIP-345) until their session expires, and keep their place.
                        foreach (var m in g.Members.Values.Where(m => m.PendingJoin is null && m.GroupInstanceId is null).ToList())
                        {
                            RemoveMember(g, m);
                        }

                        if (g.Members.Count > 0 && g.Members.Values.All(m => m.PendingJoin is null))
                        {
                            // No one rejoined: wait another rebalance timeout, as Kafka does.
                            g.JoinDeadline = now + g.Members.Values.Max(m => m.RebalanceTimeoutMs);
                            continue;
                        }

                        // Pending members stay until their own session timeout, as in Kafka: one
                        // that rejoins later is added and starts the next rebalance.
                        CompleteJoin(g);
                    }
                    else
                    {
                        TryCompleteJoin(g);
                    }
                }
            }
        }
    }

    /// <summary>Stops the timer.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_timer is not null)
        {
            await _timer.ConfigureAwait(false);
        }

        _stop.Dispose();
    }

    // ------------------------------------------------------------------ persistence

    private IPartitionLog LogFor(string groupId) => _offsetsPartition(OffsetsTopic.PartitionFor(groupId, _options.OffsetsTopicPartitions));

    private void Persist(string groupId, List<RecordToWrite> records)
    {
        if (records.Count == 0)
        {
            return;
        }

        var log = LogFor(groupId);
        var batch = RecordBatchBuilder.Build(records);
        log.Append(batch, 0);
        log.Flush();
    }

    private void PersistGroup(Group g)
    {
        var value = new GroupMetadataValue
        {
            ProtocolType = g.ProtocolType ?? string.Empty,
            Generation = g.GenerationId,
            Protocol = g.ProtocolName,
            Leader = g.LeaderId,
            CurrentStateTimestamp = g.StateTimestamp,
            Members = g.Members.Values.Select(m => new GroupMetadataValue.MemberMetadata
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                RebalanceTimeout = m.RebalanceTimeoutMs,
                SessionTimeout = m.SessionTimeoutMs,
                Subscription = g.ProtocolName is null ? [] : m.MetadataFor(g.ProtocolName),
                Assignment = m.Assignment,
            }).ToList(),
        };
        try
        {
            Persist(g.Id, [new RecordToWrite(OffsetsTopic.GroupKey(g.Id), OffsetsTopic.GroupValue(value), Now)]);
        }
        catch (IOException e)
        {
            _log.LogError("could not record group {Group}: {Error}", g.Id, e.Message);
        }
    }
}
