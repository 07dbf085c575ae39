namespace Moldau.Coordinator;

/// <summary>The states of a classic consumer group, with Kafka's names.</summary>
public enum GroupState
{
    /// <summary>No members (offsets may still be committed).</summary>
    Empty,

    /// <summary>Waiting for members to (re)join.</summary>
    PreparingRebalance,

    /// <summary>Joined; waiting for the leader's assignment.</summary>
    CompletingRebalance,

    /// <summary>Assignment handed out.</summary>
    Stable,

    /// <summary>Deleted.</summary>
    Dead,
}

/// <summary>One member of a classic group.</summary>
internal sealed class GroupMember
{
    public required string MemberId { get; set; }

    public string? GroupInstanceId { get; init; }

    public required string ClientId { get; init; }

    public required string ClientHost { get; init; }

    public int SessionTimeoutMs { get; set; }

    public int RebalanceTimeoutMs { get; set; }

    public required string ProtocolType { get; init; }

    /// <summary>The assignors it supports, preferred first; changed only through <see cref="Group.SetProtocols"/> once it is a member.</summary>
    public List<(string Name, byte[] Metadata)> Protocols { get; internal set; } = [];

    public byte[] Assignment { get; set; } = [];

    public long LastHeartbeat { get; set; }

    /// <summary>Set while the member's JoinGroup waits for the rebalance to complete; changed only through <see cref="Group.SetPendingJoin"/>.</summary>
    public TaskCompletionSource<JoinResult>? PendingJoin { get; internal set; }

    /// <summary>Set while the member's SyncGroup waits for the leader's assignment.</summary>
    public TaskCompletionSource<SyncResult>? PendingSync { get; set; }

    public byte[] MetadataFor(string protocol) => Protocols.FirstOrDefault(p => p.Name == protocol).Metadata ?? [];
}

/// <summary>A classic consumer group.</summary>
internal sealed class Group(string id)
{
    public string Id { get; } = id;

    public GroupState State { get; set; } = GroupState.Empty;

    public string? ProtocolType { get; set; }

    public string? ProtocolName { get; set; }

    /// <summary>Set for a group of the consumer protocol (KIP-848): its members live there, and <see cref="Members"/> stays empty.</summary>
    public ConsumerGroupData? Consumer { get; set; }

    public int GenerationId { get; set; }

    public string? LeaderId { get; set; }

    private readonly Dictionary<string, GroupMember> _members = new(StringComparer.Ordinal);

    // Kept by the only methods that change membership (Add, Remove, Rename, SetProtocols,
    // SetPendingJoin), so a join checks them in O(1) instead of rescanning every member:
    // with n members a rebalance stays O(n) rather than O(n²).
    private readonly Dictionary<string, int> _protocolSupport = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _protocolTypes = new(StringComparer.Ordinal);

    /// <summary>The members by id; change it only through <see cref="Add"/>, <see cref="Remove"/> and <see cref="Rename"/>.</summary>
    public IReadOnlyDictionary<string, GroupMember> Members => _members;

    /// <summary>How many members wait in a JoinGroup (have <see cref="GroupMember.PendingJoin"/>).</summary>
    public int PendingJoinCount { get; private set; }

    /// <summary>How many members support the protocol <paramref name="name"/>.</summary>
    public int SupportCount(string name) => _protocolSupport.GetValueOrDefault(name);

    /// <summary>How many members have the protocol type <paramref name="type"/>.</summary>
    public int ProtocolTypeCount(string type) => _protocolTypes.GetValueOrDefault(type);

    /// <summary>Makes <paramref name="m"/> a member.</summary>
    public void Add(GroupMember m)
    {
        _members.Add(m.MemberId, m);
        Count(m, +1);
    }

    /// <summary>Removes the member <paramref name="memberId"/>, if it is one.</summary>
    public bool Remove(string memberId)
    {
        if (!_members.Remove(memberId, out var m))
        {
            return false;
        }

        Count(m, -1);
        return true;
    }

    /// <summary>Gives member <paramref name="oldId"/> the id <paramref name="newId"/> (a static member's restart).</summary>
    public void Rename(string oldId, string newId)
    {
        if (_members.Remove(oldId, out var m))
        {
            m.MemberId = newId;
            _members[newId] = m;
        }
    }

    /// <summary>Replaces the protocols of <paramref name="m"/>.</summary>
    public void SetProtocols(GroupMember m, List<(string Name, byte[] Metadata)> protocols)
    {
        var counted = IsMember(m);
        if (counted)
        {
            CountProtocols(m, -1);
        }

        m.Protocols = protocols;
        if (counted)
        {
            CountProtocols(m, +1);
        }
    }

    /// <summary>Sets (or clears) the JoinGroup <paramref name="m"/> waits in.</summary>
    public void SetPendingJoin(GroupMember m, TaskCompletionSource<JoinResult>? pending)
    {
        if (IsMember(m))
        {
            PendingJoinCount += (pending is not null ? 1 : 0) - (m.PendingJoin is not null ? 1 : 0);
        }

        m.PendingJoin = pending;
    }

    private bool IsMember(GroupMember m) => _members.TryGetValue(m.MemberId, out var current) && current == m;

    private void Count(GroupMember m, int delta)
    {
        _protocolTypes[m.ProtocolType] = _protocolTypes.GetValueOrDefault(m.ProtocolType) + delta;
        CountProtocols(m, delta);
        if (m.PendingJoin is not null)
        {
            PendingJoinCount += delta;
        }
    }

    private void CountProtocols(GroupMember m, int delta)
    {
        foreach (var name in m.Protocols.Select(p => p.Name).Distinct(StringComparer.Ordinal))
        {
            var n = _protocolSupport.GetValueOrDefault(name) + delta;
            if (n == 0)
            {
                _protocolSupport.Remove(name);
            }
            else
            {
                _protocolSupport[name] = n;
            }
        }
    }

    /// <summary>Member ids handed out with MEMBER_ID_REQUIRED (KIP-394), awaiting the rejoin, with when they expire.</summary>
    public Dictionary<string, long> PendingMembers { get; } = new(StringComparer.Ordinal);

    /// <summary>group.instance.id to current member id (static membership, KIP-345).</summary>
    public Dictionary<string, string> StaticMembers { get; } = new(StringComparer.Ordinal);

    public Dictionary<(string Topic, int Partition), CommittedOffset> Offsets { get; } = [];

    /// <summary>When the current join phase must end (rebalance timeout, or the initial delay).</summary>
    public long JoinDeadline { get; set; }

    /// <summary>Members of this generation that have not sent SyncGroup yet.</summary>
    public HashSet<string> PendingSyncMembers { get; } = new(StringComparer.Ordinal);

    /// <summary>When the members still in <see cref="PendingSyncMembers"/> are removed (the rebalance timeout after the join phase).</summary>
    public long SyncDeadline { get; set; }

    /// <summary>The initial rebalance delay: no join completes before this.</summary>
    public long InitialDelayUntil { get; set; }

    public long StateTimestamp { get; set; }
}

/// <summary>The answer to a JoinGroup.</summary>
/// <param name="Error">Kafka error code.</param>
/// <param name="GenerationId">The new generation.</param>
/// <param name="ProtocolType">The group's protocol type.</param>
/// <param name="ProtocolName">The chosen protocol.</param>
/// <param name="LeaderId">The leader's member id.</param>
/// <param name="MemberId">This member's id.</param>
/// <param name="Members">For the leader: every member with its metadata.</param>
/// <param name="SkipAssignment">v9+: the leader keeps the current assignment (a static leader's rejoin, KIP-814).</param>
public sealed record JoinResult(short Error, int GenerationId, string? ProtocolType, string? ProtocolName, string LeaderId, string MemberId, IReadOnlyList<(string MemberId, string? InstanceId, byte[] Metadata)> Members, bool SkipAssignment = false);

/// <summary>The answer to a SyncGroup.</summary>
/// <param name="Error">Kafka error code.</param>
/// <param name="ProtocolType">The group's protocol type.</param>
/// <param name="ProtocolName">The chosen protocol.</param>
/// <param name="Assignment">This member's assignment.</param>
public sealed record SyncResult(short Error, string? ProtocolType, string? ProtocolName, byte[] Assignment);
