using Microsoft.Extensions.Logging;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Coordinator;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator;

/// <summary>
/// The groups of one <c>__consumer_offsets</c> partition: the join and sync rounds of the classic
/// protocol (the leader assigns on the client side), heartbeats and session expiry, static
/// membership, and committed offsets. It runs on the <see cref="CoordinatorRuntime{TShard}"/>,
/// one operation at a time, so it takes no locks.
/// </summary>
/// <remarks>
/// Committed offsets and group metadata change only through <see cref="Replay"/>: an operation
/// returns the records (offset commits, the group's metadata, tombstones) and the runtime applies
/// them once they are durable, as it does when the partition loads. A load brings back each group's
/// members as its last record names them (the assignment's generation), each with a fresh session,
/// as in Kafka. Membership in progress (who is waiting in a join, heartbeats, the pending
/// SyncGroups) lives in memory only, as in Kafka.
/// </remarks>
internal sealed partial class GroupCoordinatorShard : ICoordinatorShard
{
    private const string ExpiryTimer = "group-expiry";
    private const string OffsetsRetentionTimer = "offsets-retention";

    private readonly GroupCoordinatorOptions _options;
    private readonly Func<string, int, bool> _partitionExists;
    private readonly CoordinatorShardContext<GroupCoordinatorShard> _context;
    private readonly ILogger _log;
    private readonly Func<IGroupTopics?> _topics;
    private readonly Dictionary<string, Group> _groups = new(StringComparer.Ordinal);
    private readonly List<RecordToWrite> _emitted = [];
    private long _expiryAt = long.MaxValue;

    // Set once the partition has been replayed: a group record replayed after that was written by
    // an operation that already applied it.
    private bool _loaded;

    public GroupCoordinatorShard(CoordinatorShardContext<GroupCoordinatorShard> context, GroupCoordinatorOptions options, Func<string, int, bool> partitionExists, ILogger log, Func<IGroupTopics?>? topics = null)
    {
        _topics = topics ?? (() => null);
        _context = context;
        _options = options;
        _partitionExists = partitionExists;
        _log = log;
    }

    private long Now => _context.Time.GetUtcNow().ToUnixTimeMilliseconds();

    /// <summary>How many groups the shard holds (a load's log line).</summary>
    public int GroupCount => _groups.Count;

    /// <summary>How many committed offsets the shard holds.</summary>
    public int OffsetCount => _groups.Values.Sum(g => g.Offsets.Count);

    // ------------------------------------------------------------------ replay

    /// <inheritdoc/>
    public void Replay(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value) => Replay(CoordinatorRecordOrigin.At(-1), key, value);

    /// <inheritdoc/>
    public void Replay(in CoordinatorRecordOrigin origin, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        switch (OffsetsTopic.Decode(key, value))
        {
            case OffsetsTopic.OffsetEntry { Offset: null } o:
                // A tombstone removes the committed offset and whatever open transactions hold for it.
                if (_groups.TryGetValue(o.Group, out var of))
                {
                    of.Offsets.Remove((o.Topic, o.Partition));
                }

                RemovePending(o.Group, o.Topic, o.Partition);
                break;
            case OffsetsTopic.OffsetEntry o:
                {
                    // A commit without group membership makes a simple group (no protocol type), as in Kafka.
                    var g = GetOrCreate(o.Group);
                    var offset = o.Offset with { RecordOffset = origin.Offset };
                    if (origin.IsTransactional)
                    {
                        AddPending(origin.ProducerId, o.Group, o.Topic, o.Partition, offset);
                    }
                    else
                    {
                        g.Offsets[(o.Topic, o.Partition)] = offset;
                    }

                    break;
                }

            case OffsetsTopic.GroupEntry ge when ge.Value is null:
                if (_groups.Remove(ge.Group, out var removed))
                {
                    removed.State = GroupState.Dead;
                }

                break;
            case OffsetsTopic.ConsumerGroupEntry ce:
                ReplayConsumerGroup(ce);
                break;
            case OffsetsTopic.GroupEntry ge:
                {
                    var g = GetOrCreate(ge.Group);
                    g.Consumer = null;
                    g.GenerationId = ge.Value!.Generation;
                    g.ProtocolType = ge.Value.ProtocolType;
                    g.ProtocolName = ge.Value.Protocol;
                    if (ge.Value.CurrentStateTimestamp > 0)
                    {
                        g.StateTimestamp = ge.Value.CurrentStateTimestamp;
                    }

                    // Live, the operation that wrote the record has already changed the group in
                    // memory (Kafka does not replay classic group records it writes either); a load
                    // brings the members back.
                    if (!_loaded)
                    {
                        LoadMembers(g, ge.Value);
                    }

                    break;
                }
        }
    }

    /// <summary>
    /// A load's group record: the group as it was written last, with its members, as Kafka's
    /// <c>GroupMetadataManager.replay(GroupMetadataKey, GroupMetadataValue)</c> loads it. Kafka
    /// writes the record only where a group becomes Stable (the leader's assignment, a static
    /// member's rejoin) or Empty, so a group with members loads Stable, one without Empty; a
    /// rebalance that was under way is lost, and its members, whose generation is newer than the
    /// record's, get ILLEGAL_GENERATION and rejoin. Each member supports just the group's protocol
    /// with the subscription it had (a rejoin with other protocols rebalances). Its session starts
    /// in <see cref="OnLoaded"/>.
    /// </summary>
    private static void LoadMembers(Group g, GroupMetadataValue value)
    {
        foreach (var id in g.Members.Keys.ToList())
        {
            g.Remove(id);
        }

        g.StaticMembers.Clear();
        g.PendingMembers.Clear();
        g.PendingSyncMembers.Clear();
        foreach (var m in value.Members)
        {
            var member = new GroupMember
            {
                MemberId = m.MemberId,
                GroupInstanceId = m.GroupInstanceId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                SessionTimeoutMs = m.SessionTimeout,
                // Version 0 of the record has no rebalance timeout (-1): the session timeout stands in, as in Kafka.
                RebalanceTimeoutMs = m.RebalanceTimeout == -1 ? m.SessionTimeout : m.RebalanceTimeout,
                ProtocolType = value.ProtocolType,
                Assignment = m.Assignment,
            };
            if (value.Protocol is { } protocol)
            {
                member.Protocols = [(protocol, m.Subscription)];
            }

            g.Add(member);
            if (m.GroupInstanceId is { } instance)
            {
                g.StaticMembers[instance] = m.MemberId;
            }
        }

        g.LeaderId = value.Leader;
        g.State = g.Members.Count == 0 ? GroupState.Empty : GroupState.Stable;
    }

    /// <inheritdoc/>
    public void OnLoaded()
    {
        // As Kafka's onLoaded: every loaded member's session timer starts afresh, so a member that
        // goes on heartbeating with its id and generation carries on, and one that does not come
        // back expires and the group rebalances. A group over group.max.size (the limit was
        // lowered) rebalances at once, so its members can commit before some are refused.
        _loaded = true;
        OnConsumerGroupsLoaded();
        var now = Now;
        foreach (var g in _groups.Values)
        {
            if (g.Members.Count == 0)
            {
                continue;
            }

            foreach (var m in g.Members.Values)
            {
                m.LastHeartbeat = now;
            }

            _log.LogInformation("loaded group {Group} generation {Generation} with {Count} members", g.Id, g.GenerationId, g.Members.Count);
            if (g.Members.Count > _options.MaxSize)
            {
                _log.LogInformation("loaded group {Group} has {Count} members, over group.max.size {Max}: it rebalances", g.Id, g.Members.Count, _options.MaxSize);
                PrepareRebalance(g);
            }

            Arm(Deadline(g));
        }

        if (_options.OffsetsRetentionCheckIntervalMs > 0)
        {
            _context.Timer.Schedule(OffsetsRetentionTimer, TimeSpan.FromMilliseconds(_options.OffsetsRetentionCheckIntervalMs), static s => s.ExpireOffsets());
        }
    }

    private Group GetOrCreate(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var g) || g.State == GroupState.Dead)
        {
            _groups[groupId] = g = new Group(groupId) { StateTimestamp = Now };
        }

        return g;
    }

    // ------------------------------------------------------------------ results

    /// <summary>
    /// Ends an operation on <paramref name="g"/>: takes the group records it emitted and arms the
    /// shard's timer for the group's next phase deadline (O(1): session deadlines only move later
    /// in an operation, except where a join phase ends, which arms them itself). Membership records that cannot be written are
    /// logged, and the answer stands (Kafka does the same for the records of a join or a leave).
    /// </summary>
    private CoordinatorResult<T> Done<T>(Group? g, T response)
    {
        if (g is not null)
        {
            Arm(PhaseDeadline(g));
        }

        if (_emitted.Count == 0)
        {
            return CoordinatorResult<T>.Of(response);
        }

        var records = TakeEmitted();
        return CoordinatorResult<T>.Of(records, response, error =>
        {
            _log.LogError("could not record group {Group}: {Error}", g?.Id, error);
            return response;
        });
    }

    private List<RecordToWrite> TakeEmitted()
    {
        var records = _emitted.ToList();
        _emitted.Clear();
        return records;
    }

    private void PersistGroup(Group g) =>
        _emitted.Add(new RecordToWrite(OffsetsTopic.GroupKey(g.Id), OffsetsTopic.GroupValue(GroupValue(g, m => m.Assignment)), Now));

    private static GroupMetadataValue GroupValue(Group g, Func<GroupMember, byte[]> assignment) => new()
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
            Assignment = assignment(m),
        }).ToList(),
    };

    // ------------------------------------------------------------------ timer

    /// <summary>The earliest moment something of <paramref name="g"/> is due (a session, a pending member, the join or sync phase), or long.MaxValue.</summary>
    /// <remarks>O(members): called where a phase ends, not per operation.</remarks>
    private long Deadline(Group g)
    {
        var now = Now;
        var at = long.MaxValue;
        foreach (var expires in g.PendingMembers.Values)
        {
            at = Math.Min(at, expires);
        }

        foreach (var m in g.Members.Values)
        {
            if (m.PendingJoin is null)
            {
                at = Math.Min(at, m.LastHeartbeat + m.SessionTimeoutMs + 1);
            }
        }

        return Math.Min(at, PhaseDeadline(g, now));
    }

    /// <summary>When the join or sync phase of <paramref name="g"/> is due, or long.MaxValue.</summary>
    private long PhaseDeadline(Group g) => PhaseDeadline(g, Now);

    private static long PhaseDeadline(Group g, long now)
    {
        var at = long.MaxValue;
        if ((g.State is GroupState.CompletingRebalance or GroupState.Stable) && g.PendingSyncMembers.Count > 0)
        {
            at = Math.Min(at, g.SyncDeadline);
        }

        if (g.State == GroupState.PreparingRebalance)
        {
            at = Math.Min(at, g.JoinDeadline);
            if (g.InitialDelayUntil > now)
            {
                at = Math.Min(at, g.InitialDelayUntil);
            }
        }

        return at;
    }

    /// <summary>Moves the shard's one expiry deadline earlier when <paramref name="at"/> comes first.</summary>
    private void Arm(long at)
    {
        if (at >= _expiryAt)
        {
            return;
        }

        _expiryAt = at;
        _context.Timer.Schedule(ExpiryTimer, TimeSpan.FromMilliseconds(Math.Max(0, at - Now)), static s => s.Expire());
    }

    /// <summary>The expiry deadline came: expires what is due, then arms the timer for the next deadline of any group.</summary>
    internal CoordinatorResult<bool> Expire()
    {
        _expiryAt = long.MaxValue;
        Tick();
        var next = _groups.Values.Select(Deadline).DefaultIfEmpty(long.MaxValue).Min();
        if (next != long.MaxValue)
        {
            // Never in the past: what is due was handled just now.
            Arm(Math.Max(next, Now + 1));
        }

        return Done<bool>(null, true);
    }

    /// <summary>Expires members whose sessions lapsed and ends join and sync phases that are due.</summary>
    private void Tick()
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

                    if (g.Members.Count > 0 && g.PendingJoinCount == 0)
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

    /// <summary>
    /// offsets.retention.minutes, as Kafka applies it to classic groups: an empty group's offsets
    /// expire that long after it became empty (a group that never had members: after each commit),
    /// a stable consumer group's offsets of topics it no longer subscribes to that long after their
    /// commit. An empty group left without offsets is deleted. Every removal is a tombstone.
    /// </summary>
    internal CoordinatorResult<bool> ExpireOffsets()
    {
        var now = Now;
        var retention = _options.OffsetsRetentionMs;
        var records = new List<RecordToWrite>();
        foreach (var g in _groups.Values)
        {
            HashSet<string>? subscribed = null;
            if (g.Consumer is { } cg)
            {
                // A consumer-protocol group: offsets of topics no member subscribes to expire, as for a stable classic group.
                if (cg.Members.Count > 0)
                {
                    subscribed = cg.Members.Values.SelectMany(m => m.SubscribedTopicNames).Concat(cg.SubscribedTopics.Keys).ToHashSet(StringComparer.Ordinal);
                }
            }
            else if (g.State == GroupState.Stable && g.ProtocolType == "consumer" && g.ProtocolName is not null)
            {
                subscribed = g.Members.Values.SelectMany(m => SubscribedTopics(m.MetadataFor(g.ProtocolName))).ToHashSet(StringComparer.Ordinal);
            }
            else if (g.State != GroupState.Empty)
            {
                continue;
            }

            var expired = 0;
            foreach (var ((topic, partition), offset) in g.Offsets)
            {
                var since = subscribed is null && g.ProtocolType is not null ? g.StateTimestamp : offset.CommitTimestamp;
                // An offset with a transactional commit pending is kept until that transaction ends, as in Kafka.
                if ((subscribed is null || !subscribed.Contains(topic)) && now - since >= retention && !HasPendingTransactionalOffsets(g.Id, topic, partition))
                {
                    records.Add(new RecordToWrite(OffsetsTopic.OffsetKey(g.Id, topic, partition), null, now));
                    expired++;
                }
            }

            if (expired > 0)
            {
                _log.LogInformation("group {Group}: {Count} committed offsets expired (offsets.retention.minutes)", g.Id, expired);
            }

            // A group with an open transaction stays: the transaction's offsets are the group's.
            if (g.State == GroupState.Empty && g.Consumer is not { Members.Count: > 0 } && expired == g.Offsets.Count && g.Members.Count == 0 && g.PendingMembers.Count == 0 && !HasOpenTransactions(g.Id))
            {
                if (g.Consumer is not null)
                {
                    records.AddRange(ConsumerGroupTombstones(g));
                }

                records.Add(new RecordToWrite(OffsetsTopic.GroupKey(g.Id), null, now));
            }
        }

        _context.Timer.Schedule(OffsetsRetentionTimer, TimeSpan.FromMilliseconds(_options.OffsetsRetentionCheckIntervalMs), static s => s.ExpireOffsets());
        return records.Count == 0
            ? CoordinatorResult<bool>.Of(true)
            : CoordinatorResult<bool>.Of(records, true, error =>
            {
                _log.LogError("expired offsets could not be removed: {Error}", error);
                return false;
            });
    }
}
