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

    public List<(string Name, byte[] Metadata)> Protocols { get; set; } = [];

    public byte[] Assignment { get; set; } = [];

    public long LastHeartbeat { get; set; }

    /// <summary>Set while the member's JoinGroup waits for the rebalance to complete.</summary>
    public TaskCompletionSource<JoinResult>? PendingJoin { get; set; }

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

    public int GenerationId { get; set; }

    public string? LeaderId { get; set; }

    public Dictionary<string, GroupMember> Members { get; } = new(StringComparer.Ordinal);

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
