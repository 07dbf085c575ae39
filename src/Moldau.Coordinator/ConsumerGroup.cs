using Moldau.Protocol;

namespace Moldau.Coordinator;

/// <summary>Where a member of a consumer-protocol group is in its reconciliation, with the values Kafka records (MemberState).</summary>
public enum ConsumerMemberState : sbyte
{
    /// <summary>It owns its target assignment, as of its epoch.</summary>
    Stable = 0,

    /// <summary>It must release partitions before it gets the next epoch.</summary>
    UnrevokedPartitions = 1,

    /// <summary>It has the next epoch but waits for partitions other members still own.</summary>
    UnreleasedPartitions = 2,

    /// <summary>A state this version does not know.</summary>
    Unknown = 127,
}

/// <summary>Partitions by topic id; the sets are never shared between members.</summary>
internal sealed class TopicPartitionSet : Dictionary<Uuid, SortedSet<int>>
{
    public TopicPartitionSet()
    {
    }

    public TopicPartitionSet(IEnumerable<(Uuid Topic, int Partition)> partitions)
    {
        foreach (var (t, p) in partitions)
        {
            Add(t, p);
        }
    }

    public int PartitionCount => Values.Sum(s => s.Count);

    public IEnumerable<(Uuid Topic, int Partition)> All => this.SelectMany(kv => kv.Value.Select(p => (kv.Key, p)));

    public bool Contains(Uuid topic, int partition) => TryGetValue(topic, out var s) && s.Contains(partition);

    public void Add(Uuid topic, int partition)
    {
        if (!TryGetValue(topic, out var s))
        {
            this[topic] = s = [];
        }

        s.Add(partition);
    }

    public bool SameAs(TopicPartitionSet other) =>
        PartitionCount == other.PartitionCount && All.All(tp => other.Contains(tp.Topic, tp.Partition));
}

/// <summary>One member of a consumer-protocol group (KIP-848).</summary>
internal sealed class ConsumerMember
{
    public required string MemberId { get; set; }

    public string? InstanceId { get; set; }

    public string? RackId { get; set; }

    public string ClientId { get; set; } = string.Empty;

    public string ClientHost { get; set; } = string.Empty;

    public List<string> SubscribedTopicNames { get; set; } = [];

    public string? SubscribedTopicRegex { get; set; }

    public string? ServerAssignor { get; set; }

    public int RebalanceTimeoutMs { get; set; } = -1;

    /// <summary>The epoch it has; -2 while a static member is away (it left with epoch -2).</summary>
    public int MemberEpoch { get; set; }

    /// <summary>The epoch before the last bump: a member whose answer was lost may come back with it.</summary>
    public int PreviousMemberEpoch { get; set; }

    public ConsumerMemberState State { get; set; } = ConsumerMemberState.Stable;

    /// <summary>The partitions it owns (those the last answer gave it).</summary>
    public TopicPartitionSet Assigned { get; set; } = [];

    /// <summary>The partitions it must give up; still its own until its heartbeat no longer names them.</summary>
    public TopicPartitionSet PendingRevocation { get; set; } = [];

    public long LastHeartbeat { get; set; }
}

/// <summary>The KIP-848 part of a group whose members speak ConsumerGroupHeartbeat.</summary>
internal sealed class ConsumerGroupData
{
    /// <summary>The group epoch: bumped by every change of members, subscriptions or subscribed topics' metadata.</summary>
    public int Epoch { get; set; }

    /// <summary>The group epoch the target assignment was computed for.</summary>
    public int AssignmentEpoch { get; set; }

    public Dictionary<string, ConsumerMember> Members { get; } = new(StringComparer.Ordinal);

    /// <summary>Each member's target assignment.</summary>
    public Dictionary<string, TopicPartitionSet> Target { get; } = new(StringComparer.Ordinal);

    /// <summary>The subscribed topics as the target assignment saw them: name to (id, partition count).</summary>
    public Dictionary<string, (Uuid Id, int Partitions)> SubscribedTopics { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Who owns each partition now (assigned or pending revocation): a partition moves only once free.</summary>
    public Dictionary<(Uuid Topic, int Partition), string> Owners { get; } = [];

    public ConsumerMember? StaticMember(string instanceId) => Members.Values.FirstOrDefault(m => m.InstanceId == instanceId);

    /// <summary>Replaces the partitions <paramref name="m"/> holds, keeping <see cref="Owners"/> true.</summary>
    public void SetOwned(ConsumerMember m, TopicPartitionSet assigned, TopicPartitionSet pending)
    {
        foreach (var tp in m.Assigned.All.Concat(m.PendingRevocation.All))
        {
            if (Owners.TryGetValue(tp, out var owner) && owner == m.MemberId)
            {
                Owners.Remove(tp);
            }
        }

        m.Assigned = assigned;
        m.PendingRevocation = pending;
        foreach (var tp in assigned.All.Concat(pending.All))
        {
            Owners[tp] = m.MemberId;
        }
    }

    /// <summary>Kafka's consumer group states: Empty, Assigning (the target is behind the group epoch), Reconciling, Stable.</summary>
    public string StateName =>
        Members.Count == 0 ? "Empty"
        : AssignmentEpoch < Epoch ? "Assigning"
        : Members.Values.Any(m => m.MemberEpoch != AssignmentEpoch || m.State != ConsumerMemberState.Stable) ? "Reconciling"
        : "Stable";
}
