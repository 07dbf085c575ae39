using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Coordinator;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator;

/// <summary>A topic as consumer-protocol groups see it.</summary>
/// <param name="Name">Its name.</param>
/// <param name="Id">Its id (assignments name topics by id).</param>
/// <param name="Partitions">How many partitions it has.</param>
/// <param name="IsInternal">Internal topics never match a regular expression.</param>
public sealed record ConsumerTopic(string Name, Uuid Id, int Partitions, bool IsInternal = false);

/// <summary>The topics the broker has, for the target assignments of consumer-protocol groups.</summary>
public interface IGroupTopics
{
    /// <summary>The topic named <paramref name="name"/>, or null.</summary>
    ConsumerTopic? Find(string name);

    /// <summary>Every topic (regular-expression subscriptions).</summary>
    IEnumerable<ConsumerTopic> All { get; }
}

/// <summary>A ConsumerGroupHeartbeat as the coordinator takes it.</summary>
/// <param name="GroupId">The group.</param>
/// <param name="MemberId">The member id (the client makes it, KIP-1082; empty: the coordinator makes one).</param>
/// <param name="MemberEpoch">0 to join, the current epoch to heartbeat, -1 to leave, -2 for a static member's temporary leave.</param>
/// <param name="InstanceId">group.instance.id, or null.</param>
/// <param name="RackId">The client's rack, or null.</param>
/// <param name="RebalanceTimeoutMs">How long it may take to revoke partitions (-1: unchanged).</param>
/// <param name="SubscribedTopicNames">Subscribed topics (null: unchanged).</param>
/// <param name="SubscribedTopicRegex">Subscribed regular expression (null: unchanged, empty: none).</param>
/// <param name="ServerAssignor">The assignor asked for (null: unchanged).</param>
/// <param name="OwnedPartitions">The partitions it owns (null: unchanged since the last heartbeat).</param>
/// <param name="ClientId">The client id.</param>
/// <param name="ClientHost">The client's address.</param>
public sealed record ConsumerHeartbeatRequest(
    string GroupId,
    string MemberId,
    int MemberEpoch,
    string? InstanceId,
    string? RackId,
    int RebalanceTimeoutMs,
    IReadOnlyList<string>? SubscribedTopicNames,
    string? SubscribedTopicRegex,
    string? ServerAssignor,
    IReadOnlyList<(Uuid TopicId, IReadOnlyList<int> Partitions)>? OwnedPartitions,
    string ClientId,
    string ClientHost);

/// <summary>The answer to a ConsumerGroupHeartbeat.</summary>
/// <param name="Error">Kafka error code.</param>
/// <param name="Message">The error's message, or null.</param>
/// <param name="MemberId">The member id.</param>
/// <param name="MemberEpoch">The member's epoch.</param>
/// <param name="HeartbeatIntervalMs">When to heartbeat next.</param>
/// <param name="Assignment">The partitions the member owns now, or null (unchanged, or an error).</param>
public sealed record ConsumerHeartbeatResult(ErrorCode Error, string? Message, string? MemberId, int MemberEpoch, int HeartbeatIntervalMs, IReadOnlyList<(Uuid TopicId, IReadOnlyList<int> Partitions)>? Assignment)
{
    internal static ConsumerHeartbeatResult Failure(ErrorCode error, string? message = null) => new(error, message, null, -1, 0, null);
}

/// <summary>A consumer-protocol group as ConsumerGroupDescribe shows it.</summary>
/// <param name="GroupId">The group.</param>
/// <param name="Error">GROUP_ID_NOT_FOUND when there is no consumer-protocol group of that id.</param>
/// <param name="State">Empty, Assigning, Reconciling or Stable.</param>
/// <param name="Epoch">The group epoch.</param>
/// <param name="AssignmentEpoch">The target assignment's epoch.</param>
/// <param name="Assignor">The assignor in use.</param>
/// <param name="Members">The members.</param>
public sealed record ConsumerGroupDescription(string GroupId, ErrorCode Error, string State, int Epoch, int AssignmentEpoch, string Assignor, IReadOnlyList<ConsumerMemberDescription> Members);

/// <summary>A member as ConsumerGroupDescribe shows it.</summary>
/// <param name="MemberId">Its id.</param>
/// <param name="InstanceId">Its instance id, or null.</param>
/// <param name="RackId">Its rack, or null.</param>
/// <param name="MemberEpoch">Its epoch.</param>
/// <param name="ClientId">Its client id.</param>
/// <param name="ClientHost">Its address.</param>
/// <param name="SubscribedTopicNames">Its subscription.</param>
/// <param name="SubscribedTopicRegex">Its regular expression, or null.</param>
/// <param name="Assigned">The partitions it owns (topic id, name, partitions).</param>
/// <param name="Target">Its target assignment.</param>
public sealed record ConsumerMemberDescription(string MemberId, string? InstanceId, string? RackId, int MemberEpoch, string ClientId, string ClientHost, IReadOnlyList<string> SubscribedTopicNames, string? SubscribedTopicRegex, IReadOnlyList<(Uuid TopicId, string TopicName, IReadOnlyList<int> Partitions)> Assigned, IReadOnlyList<(Uuid TopicId, string TopicName, IReadOnlyList<int> Partitions)> Target);

/// <summary>
/// The consumer group protocol of KIP-848: members heartbeat with ConsumerGroupHeartbeat, the
/// coordinator computes the target assignment with a server-side assignor and hands each member
/// its part one step at a time: a member first gives up what it must lose (its epoch stays), then
/// gets the new epoch and the partitions no other member still owns, then the rest as their
/// previous owners release them. Only the members whose partitions move change anything; the
/// others keep consuming.
/// </summary>
/// <remarks>
/// As for classic groups, an operation changes the group in memory and returns records
/// (<see cref="OffsetsTopic.ConsumerGroupEntry"/>, Kafka's formats); a load replays them.
/// </remarks>
internal sealed partial class GroupCoordinatorShard
{
    private const string ConsumerSessionTimer = "cg-session";
    private const string ConsumerRevocationTimer = "cg-revocation";

    private readonly Dictionary<string, Regex> _regexes = new(StringComparer.Ordinal);


    /// <summary>ConsumerGroupHeartbeat.</summary>
    public CoordinatorResult<ConsumerHeartbeatResult> ConsumerHeartbeat(ConsumerHeartbeatRequest request)
    {
        ConsumerHeartbeatResult response;
        try
        {
            response = ConsumerHeartbeatCore(request);
        }
        catch (ConsumerGroupException e)
        {
            _emitted.Clear();
            response = ConsumerHeartbeatResult.Failure(e.Error, e.Message);
        }

        return Done<ConsumerHeartbeatResult>(null, response);
    }

    private sealed class ConsumerGroupException(ErrorCode error, string message) : Exception(message)
    {
        public ErrorCode Error { get; } = error;
    }

    private ConsumerHeartbeatResult ConsumerHeartbeatCore(ConsumerHeartbeatRequest r)
    {
        Validate(r);
        var g = ConsumerGroupFor(r.GroupId, create: r.MemberEpoch == 0);
        var cg = g.Consumer!;
        if (r.MemberEpoch is -1 or -2)
        {
            return LeaveConsumerGroup(g, r);
        }

        var (m, bump) = r.MemberEpoch == 0 ? JoinConsumerGroup(g, r) : (Existing(cg, r), false);
        var now = Now;
        m.LastHeartbeat = now;
        m.ClientId = r.ClientId;
        m.ClientHost = r.ClientHost;
        var changed = bump;
        if (r.RackId is not null && r.RackId != m.RackId)
        {
            m.RackId = r.RackId;
            changed = true;
        }

        if (r.RebalanceTimeoutMs > 0 && r.RebalanceTimeoutMs != m.RebalanceTimeoutMs)
        {
            m.RebalanceTimeoutMs = r.RebalanceTimeoutMs;
            changed = true;
        }

        if (r.ServerAssignor is not null && r.ServerAssignor != m.ServerAssignor)
        {
            m.ServerAssignor = r.ServerAssignor;
            changed = true;
            bump = true;
        }

        if (r.SubscribedTopicNames is { } names && !names.Order(StringComparer.Ordinal).SequenceEqual(m.SubscribedTopicNames.Order(StringComparer.Ordinal)))
        {
            m.SubscribedTopicNames = [.. names.Distinct(StringComparer.Ordinal)];
            changed = true;
            bump = true;
        }

        if (r.SubscribedTopicRegex is { } regex && (regex.Length == 0 ? null : regex) != m.SubscribedTopicRegex)
        {
            m.SubscribedTopicRegex = regex.Length == 0 ? null : regex;
            changed = true;
            bump = true;
        }

        if (changed)
        {
            EmitMemberMetadata(g.Id, m);
        }

        // The subscribed topics' metadata, looked at on every heartbeat: a topic created or
        // deleted (names and regular expressions) or grown bumps the group epoch.
        var topics = SubscribedTopicMetadata(cg);
        if (!SameTopics(topics, cg.SubscribedTopics))
        {
            cg.SubscribedTopics = topics;
            EmitPartitionMetadata(g.Id, cg);
            bump = true;
        }

        if (bump)
        {
            BumpGroupEpoch(g);
        }

        if (cg.AssignmentEpoch < cg.Epoch)
        {
            ComputeTarget(g);
        }

        var before = (m.MemberEpoch, m.State, Assigned: m.Assigned.PartitionCount, Pending: m.PendingRevocation.PartitionCount);
        Reconcile(g, m, r.OwnedPartitions is null ? null : new TopicPartitionSet(r.OwnedPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p)))));
        var reconciled = before != (m.MemberEpoch, m.State, m.Assigned.PartitionCount, m.PendingRevocation.PartitionCount);
        if (reconciled || changed)
        {
            EmitCurrentAssignment(g.Id, m);
        }

        ScheduleSession(g.Id, m);
        return new ConsumerHeartbeatResult(ErrorCode.None, null, m.MemberId, m.MemberEpoch, _options.ConsumerHeartbeatIntervalMs, ToList(m.Assigned));
    }

    private void Validate(ConsumerHeartbeatRequest r)
    {
        if (string.IsNullOrEmpty(r.GroupId))
        {
            throw new ConsumerGroupException(ErrorCode.InvalidRequest, "GroupId can't be empty.");
        }

        if (r.MemberEpoch < -2)
        {
            throw new ConsumerGroupException(ErrorCode.InvalidRequest, $"MemberEpoch {r.MemberEpoch} is invalid.");
        }

        if (r.MemberEpoch != 0 && r.MemberId.Length == 0)
        {
            throw new ConsumerGroupException(ErrorCode.InvalidRequest, "MemberId can't be empty.");
        }

        if (r.MemberEpoch == -2 && r.InstanceId is null)
        {
            throw new ConsumerGroupException(ErrorCode.InvalidRequest, "InstanceId can't be null when MemberEpoch is -2.");
        }

        if (r.MemberEpoch == 0)
        {
            if (r.RebalanceTimeoutMs == -1)
            {
                throw new ConsumerGroupException(ErrorCode.InvalidRequest, "RebalanceTimeoutMs must be provided in first request.");
            }

            if (r.SubscribedTopicNames is null && r.SubscribedTopicRegex is null)
            {
                throw new ConsumerGroupException(ErrorCode.InvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
        }

        if (r.ServerAssignor is { } assignor && !_options.ConsumerAssignors.Contains(assignor, StringComparer.Ordinal))
        {
            throw new ConsumerGroupException(ErrorCode.UnsupportedAssignor, $"ServerAssignor {assignor} is not supported. Supported assignors: {string.Join(", ", _options.ConsumerAssignors)}.");
        }

        if (!string.IsNullOrEmpty(r.SubscribedTopicRegex))
        {
            try
            {
                _ = Compile(r.SubscribedTopicRegex);
            }
            catch (ArgumentException e)
            {
                throw new ConsumerGroupException(ErrorCode.InvalidRequest, $"SubscribedTopicRegex {r.SubscribedTopicRegex} is not a valid regular expression: {e.Message}");
            }
        }
    }

    /// <summary>
    /// The consumer-protocol group of <paramref name="groupId"/>: a join creates it, and takes over
    /// an empty classic group (its offsets stay); a classic group with members is not a consumer
    /// group (GROUP_ID_NOT_FOUND), as Kafka answers without online migration.
    /// </summary>
    private Group ConsumerGroupFor(string groupId, bool create)
    {
        if (_groups.TryGetValue(groupId, out var g) && g.State != GroupState.Dead)
        {
            if (g.Consumer is not null)
            {
                return g;
            }

            if (g.Members.Count > 0 || g.PendingMembers.Count > 0 || g.State != GroupState.Empty)
            {
                throw new ConsumerGroupException(ErrorCode.GroupIdNotFound, $"Group {groupId} is not a consumer group.");
            }
        }
        else if (!create)
        {
            throw new ConsumerGroupException(ErrorCode.GroupIdNotFound, $"Consumer group {groupId} not found.");
        }

        g = GetOrCreate(groupId);
        g.Consumer = new ConsumerGroupData();
        g.ProtocolType = "consumer";
        g.ProtocolName = null;
        g.GenerationId = 0;
        return g;
    }

    private (ConsumerMember Member, bool New) JoinConsumerGroup(Group g, ConsumerHeartbeatRequest r)
    {
        var cg = g.Consumer!;
        if (r.InstanceId is { } instance && cg.StaticMember(instance) is { } previous && previous.MemberId != r.MemberId)
        {
            if (previous.MemberEpoch != -2)
            {
                throw new ConsumerGroupException(ErrorCode.UnreleasedInstanceId, $"Static member {previous.MemberId} with instance id {instance} is not released.");
            }

            // A static member back after its temporary leave: the new member id takes its place,
            // its assignment and its target, with no rebalance.
            var replacement = new ConsumerMember
            {
                MemberId = r.MemberId.Length > 0 ? r.MemberId : NewMemberId(),
                InstanceId = instance,
                RackId = previous.RackId,
                SubscribedTopicNames = previous.SubscribedTopicNames,
                SubscribedTopicRegex = previous.SubscribedTopicRegex,
                ServerAssignor = previous.ServerAssignor,
                RebalanceTimeoutMs = previous.RebalanceTimeoutMs,
                MemberEpoch = previous.PreviousMemberEpoch,
                PreviousMemberEpoch = previous.PreviousMemberEpoch,
                State = previous.State,
            };
            var (assigned, pending) = (previous.Assigned, previous.PendingRevocation);
            var target = cg.Target.GetValueOrDefault(previous.MemberId);
            RemoveConsumerMemberRecords(g, previous);
            cg.SetOwned(previous, [], []);
            cg.Members.Remove(previous.MemberId);
            cg.Target.Remove(previous.MemberId);
            _context.Timer.Cancel(SessionKey(g.Id, previous.MemberId));
            cg.Members[replacement.MemberId] = replacement;
            cg.SetOwned(replacement, assigned, pending);
            if (target is not null)
            {
                cg.Target[replacement.MemberId] = target;
                EmitTarget(g.Id, replacement.MemberId, target);
            }

            EmitMemberMetadata(g.Id, replacement);
            return (replacement, false);
        }

        if (r.MemberId.Length > 0 && cg.Members.TryGetValue(r.MemberId, out var existing))
        {
            // A member that joins again with its id (after FENCED_MEMBER_EPOCH, or a lost answer)
            // gets its current assignment back with the whole answer.
            return (existing, false);
        }

        if (cg.Members.Count >= _options.ConsumerMaxSize)
        {
            throw new ConsumerGroupException(ErrorCode.GroupMaxSizeReached, $"The consumer group has reached its maximum capacity of {_options.ConsumerMaxSize} members.");
        }

        var m = new ConsumerMember { MemberId = r.MemberId.Length > 0 ? r.MemberId : NewMemberId(), InstanceId = r.InstanceId };
        cg.Members[m.MemberId] = m;
        _log.LogInformation("member {Member} joins consumer group {Group}", m.MemberId, g.Id);
        return (m, true);
    }

    private static string NewMemberId() => Convert.ToBase64String(Guid.NewGuid().ToByteArray()).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private static ConsumerMember Existing(ConsumerGroupData cg, ConsumerHeartbeatRequest r)
    {
        if (!cg.Members.TryGetValue(r.MemberId, out var m))
        {
            throw new ConsumerGroupException(ErrorCode.UnknownMemberId, $"Member {r.MemberId} is not a member of the group.");
        }

        if (r.InstanceId is not null && m.InstanceId != r.InstanceId)
        {
            throw new ConsumerGroupException(ErrorCode.FencedInstanceId, $"Member {r.MemberId} does not have instance id {r.InstanceId}.");
        }

        // Kafka's throwIfMemberEpochIsInvalid: a member one epoch behind whose answer was lost
        // may go on while it owns nothing it should not.
        if (r.MemberEpoch > m.MemberEpoch
            || (r.MemberEpoch < m.MemberEpoch && (r.MemberEpoch != m.PreviousMemberEpoch
                || (r.OwnedPartitions is { } owned && !owned.All(t => t.Partitions.All(p => m.Assigned.Contains(t.TopicId, p)))))))
        {
            throw new ConsumerGroupException(ErrorCode.FencedMemberEpoch, $"The consumer group member has a smaller member epoch ({r.MemberEpoch}) than the one known by the group coordinator ({m.MemberEpoch}). The member must abandon all its partitions and rejoin.");
        }

        return m;
    }

    private ConsumerHeartbeatResult LeaveConsumerGroup(Group g, ConsumerHeartbeatRequest r)
    {
        var cg = g.Consumer!;
        var m = r.InstanceId is { } instance ? cg.StaticMember(instance) : cg.Members.GetValueOrDefault(r.MemberId);
        if (m is null)
        {
            throw new ConsumerGroupException(ErrorCode.UnknownMemberId, $"Member {r.MemberId} is not a member of the group.");
        }

        if (m.MemberId != r.MemberId)
        {
            throw new ConsumerGroupException(ErrorCode.FencedInstanceId, $"Static member {r.MemberId} with instance id {r.InstanceId} was replaced by {m.MemberId}.");
        }

        if (r.MemberEpoch == -2)
        {
            // A static member's temporary leave: it keeps its partitions for its session timeout,
            // and a member with its instance id takes them over.
            _log.LogInformation("static member {Member} ({Instance}) of consumer group {Group} leaves temporarily", m.MemberId, m.InstanceId, g.Id);
            if (m.MemberEpoch != -2)
            {
                m.PreviousMemberEpoch = m.MemberEpoch;
                m.MemberEpoch = -2;
                EmitCurrentAssignment(g.Id, m);
            }

            return new ConsumerHeartbeatResult(ErrorCode.None, null, m.MemberId, -2, 0, null);
        }

        _log.LogInformation("member {Member} leaves consumer group {Group}", m.MemberId, g.Id);
        RemoveConsumerMember(g, m);
        return new ConsumerHeartbeatResult(ErrorCode.None, null, m.MemberId, -1, 0, null);
    }

    /// <summary>Removes <paramref name="m"/>: its partitions are free at once, and the group epoch moves.</summary>
    private void RemoveConsumerMember(Group g, ConsumerMember m)
    {
        var cg = g.Consumer!;
        RemoveConsumerMemberRecords(g, m);
        cg.SetOwned(m, [], []);
        cg.Members.Remove(m.MemberId);
        cg.Target.Remove(m.MemberId);
        _context.Timer.Cancel(SessionKey(g.Id, m.MemberId));
        _context.Timer.Cancel(RevocationKey(g.Id, m.MemberId));
        BumpGroupEpoch(g);
    }

    private void RemoveConsumerMemberRecords(Group g, ConsumerMember m)
    {
        var now = Now;
        _emitted.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupCurrentAssignmentKeyVersion, g.Id, m.MemberId), null, now));
        _emitted.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupTargetMemberKeyVersion, g.Id, m.MemberId), null, now));
        _emitted.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupMemberMetadataKeyVersion, g.Id, m.MemberId), null, now));
    }

    private void BumpGroupEpoch(Group g)
    {
        var cg = g.Consumer!;
        cg.Epoch++;
        g.StateTimestamp = Now;
        _emitted.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupMetadataKeyVersion, g.Id), OffsetsTopic.ConsumerGroupValue(new ConsumerGroupMetadataValue { Epoch = cg.Epoch }), Now));
    }

    /// <summary>The topics the members subscribe to (names and regular expressions), as they are now.</summary>
    private Dictionary<string, (Uuid Id, int Partitions)> SubscribedTopicMetadata(ConsumerGroupData cg)
    {
        var result = new Dictionary<string, (Uuid, int)>(StringComparer.Ordinal);
        var topics = _topics();
        if (topics is null)
        {
            return result;
        }

        foreach (var name in cg.Members.Values.SelectMany(m => m.SubscribedTopicNames).Distinct(StringComparer.Ordinal))
        {
            if (topics.Find(name) is { Partitions: > 0 } t)
            {
                result[name] = (t.Id, t.Partitions);
            }
        }

        var regexes = cg.Members.Values.Select(m => m.SubscribedTopicRegex).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        if (regexes.Count > 0)
        {
            var compiled = regexes.Select(Compile).ToList();
            foreach (var t in topics.All)
            {
                if (!t.IsInternal && t.Partitions > 0 && compiled.Any(c => c.IsMatch(t.Name)))
                {
                    result[t.Name] = (t.Id, t.Partitions);
                }
            }
        }

        return result;
    }

    /// <summary>A KIP-848 regular expression (RE2J in Kafka; .NET's backtracking-free engine here), matched against the whole topic name.</summary>
    /// <remarks>Compiled once per shard and pattern (building a non-backtracking automaton is not cheap; heartbeats match often).</remarks>
    private Regex Compile(string pattern)
    {
        if (!_regexes.TryGetValue(pattern, out var regex))
        {
            if (_regexes.Count >= 1024)
            {
                _regexes.Clear();
            }

            _regexes[pattern] = regex = new Regex($"^(?:{pattern})$", RegexOptions.NonBacktracking | RegexOptions.CultureInvariant);
        }

        return regex;
    }

    private bool Subscribes(ConsumerMember m, string topic) =>
        m.SubscribedTopicNames.Contains(topic, StringComparer.Ordinal) || (m.SubscribedTopicRegex is { } regex && Compile(regex).IsMatch(topic));

    private static bool SameTopics(Dictionary<string, (Uuid Id, int Partitions)> a, Dictionary<string, (Uuid Id, int Partitions)> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    /// <summary>The assignor: the one most members ask for, else the first of group.consumer.assignors, as Kafka picks it.</summary>
    private string AssignorOf(ConsumerGroupData cg) =>
        cg.Members.Values.Select(m => m.ServerAssignor).OfType<string>()
            .GroupBy(a => a, StringComparer.Ordinal).OrderByDescending(a => a.Count()).ThenBy(a => a.Key, StringComparer.Ordinal)
            .Select(a => a.Key).FirstOrDefault() ?? _options.ConsumerAssignors.FirstOrDefault() ?? "uniform";

    /// <summary>A new target assignment for the group epoch; only the members whose target changed get a record.</summary>
    private void ComputeTarget(Group g)
    {
        var cg = g.Consumer!;
        var subscriptions = cg.Members.Values.ToDictionary(
            m => m.MemberId,
            m => cg.SubscribedTopics.Keys.Where(t => Subscribes(m, t)).ToHashSet(StringComparer.Ordinal),
            StringComparer.Ordinal);
        var target = ConsumerAssignors.Assign(AssignorOf(cg), subscriptions, cg.SubscribedTopics, cg.Target);
        foreach (var (member, partitions) in target)
        {
            if (!cg.Target.TryGetValue(member, out var old) || !old.SameAs(partitions))
            {
                cg.Target[member] = partitions;
                EmitTarget(g.Id, member, partitions);
            }
        }

        cg.AssignmentEpoch = cg.Epoch;
        _emitted.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupTargetMetadataKeyVersion, g.Id), OffsetsTopic.ConsumerGroupValue(new ConsumerGroupTargetAssignmentMetadataValue { AssignmentEpoch = cg.AssignmentEpoch }), Now));
        _log.LogInformation("consumer group {Group} epoch {Epoch}: new target assignment of {Partitions} partitions over {Members} members", g.Id, cg.Epoch, target.Values.Sum(t => t.PartitionCount), target.Count);
    }

    /// <summary>
    /// Moves <paramref name="m"/> one step towards its target (Kafka's CurrentAssignmentBuilder):
    /// partitions to give up first (the epoch waits until the member's heartbeat no longer owns
    /// them), then the new epoch with the partitions that are free; the others follow as their
    /// previous owners release them.
    /// </summary>
    private void Reconcile(Group g, ConsumerMember m, TopicPartitionSet? owned)
    {
        var cg = g.Consumer!;
        switch (m.State)
        {
            case ConsumerMemberState.UnrevokedPartitions:
                if (owned is null || m.PendingRevocation.All.Any(tp => owned.Contains(tp.Topic, tp.Partition)))
                {
                    return;
                }

                cg.SetOwned(m, m.Assigned, []);
                _context.Timer.Cancel(RevocationKey(g.Id, m.MemberId));
                Next(g, m);
                return;
            case ConsumerMemberState.UnreleasedPartitions:
                Next(g, m);
                return;
            default:
                if (m.MemberEpoch != cg.AssignmentEpoch)
                {
                    Next(g, m);
                }

                return;
        }
    }

    private void Next(Group g, ConsumerMember m)
    {
        var cg = g.Consumer!;
        var target = cg.Target.GetValueOrDefault(m.MemberId) ?? [];
        var kept = new TopicPartitionSet(m.Assigned.All.Where(tp => target.Contains(tp.Topic, tp.Partition)));
        var revoke = new TopicPartitionSet(m.Assigned.All.Where(tp => !target.Contains(tp.Topic, tp.Partition)));
        if (revoke.PartitionCount > 0)
        {
            cg.SetOwned(m, kept, revoke);
            m.State = ConsumerMemberState.UnrevokedPartitions;
            var timeout = m.RebalanceTimeoutMs > 0 ? m.RebalanceTimeoutMs : _options.ConsumerSessionTimeoutMs;
            var (group, member, epoch) = (g.Id, m.MemberId, m.MemberEpoch);
            _context.Timer.Schedule(RevocationKey(group, member), TimeSpan.FromMilliseconds(timeout), s => s.RevocationTimedOut(group, member, epoch));
            return;
        }

        var assigned = new TopicPartitionSet(kept.All);
        var unreleased = false;
        foreach (var tp in target.All)
        {
            if (kept.Contains(tp.Topic, tp.Partition))
            {
                continue;
            }

            if (cg.Owners.TryGetValue(tp, out var owner) && owner != m.MemberId)
            {
                unreleased = true;
            }
            else
            {
                assigned.Add(tp.Topic, tp.Partition);
            }
        }

        if (m.MemberEpoch != cg.AssignmentEpoch)
        {
            m.PreviousMemberEpoch = m.MemberEpoch;
            m.MemberEpoch = cg.AssignmentEpoch;
        }

        m.State = unreleased ? ConsumerMemberState.UnreleasedPartitions : ConsumerMemberState.Stable;
        cg.SetOwned(m, assigned, []);
    }

    /// <summary>A member that did not give up its partitions within its rebalance timeout is removed, as Kafka fences it.</summary>
    internal CoordinatorResult<bool> RevocationTimedOut(string groupId, string memberId, int epoch)
    {
        if (_groups.TryGetValue(groupId, out var g) && g.Consumer?.Members.GetValueOrDefault(memberId) is { State: ConsumerMemberState.UnrevokedPartitions } m && m.MemberEpoch == epoch)
        {
            _log.LogInformation("member {Member} of consumer group {Group} did not revoke its partitions within its rebalance timeout: removed", memberId, groupId);
            RemoveConsumerMember(g, m);
        }

        return Done(null, true);
    }

    private static string SessionKey(string group, string member) => $"{ConsumerSessionTimer} {group} {member}";

    private static string RevocationKey(string group, string member) => $"{ConsumerRevocationTimer} {group} {member}";

    private void ScheduleSession(string groupId, ConsumerMember m)
    {
        var memberId = m.MemberId;
        _context.Timer.Schedule(SessionKey(groupId, memberId), TimeSpan.FromMilliseconds(_options.ConsumerSessionTimeoutMs), s => s.ConsumerSessionExpired(groupId, memberId));
    }

    /// <summary>group.consumer.session.timeout.ms passed without a heartbeat: the member is removed and its partitions move.</summary>
    internal CoordinatorResult<bool> ConsumerSessionExpired(string groupId, string memberId)
    {
        if (_groups.TryGetValue(groupId, out var g) && g.Consumer?.Members.GetValueOrDefault(memberId) is { } m)
        {
            if (Now - m.LastHeartbeat >= _options.ConsumerSessionTimeoutMs)
            {
                _log.LogInformation("member {Member} of consumer group {Group} expired after {Timeout} ms without a heartbeat", memberId, groupId, _options.ConsumerSessionTimeoutMs);
                RemoveConsumerMember(g, m);
            }
            else
            {
                ScheduleSession(groupId, m);
            }
        }

        return Done(null, true);
    }

    private static List<(Uuid TopicId, IReadOnlyList<int> Partitions)> ToList(TopicPartitionSet set) =>
        set.OrderBy(kv => kv.Key.ToString(), StringComparer.Ordinal).Select(kv => (kv.Key, (IReadOnlyList<int>)kv.Value.ToList())).ToList();

    // ------------------------------------------------------------------ records

    private void EmitMemberMetadata(string groupId, ConsumerMember m) =>
        _emitted.Add(new RecordToWrite(
            OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupMemberMetadataKeyVersion, groupId, m.MemberId),
            OffsetsTopic.ConsumerGroupValue(new ConsumerGroupMemberMetadataValue
            {
                InstanceId = m.InstanceId,
                RackId = m.RackId,
                ClientId = m.ClientId,
                ClientHost = m.ClientHost,
                SubscribedTopicNames = [.. m.SubscribedTopicNames],
                SubscribedTopicRegex = m.SubscribedTopicRegex,
                RebalanceTimeoutMs = m.RebalanceTimeoutMs,
                ServerAssignor = m.ServerAssignor,
                ClassicMemberMetadata = null,
            }),
            Now));

    private void EmitPartitionMetadata(string groupId, ConsumerGroupData cg) =>
        _emitted.Add(new RecordToWrite(
            OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupPartitionMetadataKeyVersion, groupId),
            OffsetsTopic.ConsumerGroupValue(new ConsumerGroupPartitionMetadataValue
            {
                Topics = cg.SubscribedTopics.OrderBy(t => t.Key, StringComparer.Ordinal)
                    .Select(t => new ConsumerGroupPartitionMetadataValue.TopicMetadata { TopicId = t.Value.Id, TopicName = t.Key, NumPartitions = t.Value.Partitions })
                    .ToList(),
            }),
            Now));

    private void EmitTarget(string groupId, string memberId, TopicPartitionSet target) =>
        _emitted.Add(new RecordToWrite(
            OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupTargetMemberKeyVersion, groupId, memberId),
            OffsetsTopic.ConsumerGroupValue(new ConsumerGroupTargetAssignmentMemberValue
            {
                TopicPartitions = target.Select(kv => new ConsumerGroupTargetAssignmentMemberValue.TopicPartition { TopicId = kv.Key, Partitions = [.. kv.Value] }).ToList(),
            }),
            Now));

    private void EmitCurrentAssignment(string groupId, ConsumerMember m) =>
        _emitted.Add(new RecordToWrite(
            OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupCurrentAssignmentKeyVersion, groupId, m.MemberId),
            OffsetsTopic.ConsumerGroupValue(new ConsumerGroupCurrentMemberAssignmentValue
            {
                MemberEpoch = m.MemberEpoch,
                PreviousMemberEpoch = m.PreviousMemberEpoch,
                State = (sbyte)m.State,
                AssignedPartitions = m.Assigned.Select(kv => new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = kv.Key, Partitions = [.. kv.Value] }).ToList(),
                PartitionsPendingRevocation = m.PendingRevocation.Select(kv => new ConsumerGroupCurrentMemberAssignmentValue.TopicPartitions { TopicId = kv.Key, Partitions = [.. kv.Value] }).ToList(),
            }),
            Now));

    /// <summary>
    /// A load's consumer-group record. Live, the operation that wrote it already changed the group,
    /// except for the group's tombstone (DeleteGroups, a classic join taking over an empty group),
    /// which ends its consumer part in both cases; offsets stay until their own tombstones.
    /// </summary>
    private void ReplayConsumerGroup(OffsetsTopic.ConsumerGroupEntry e)
    {
        if (e.KeyVersion == OffsetsTopic.ConsumerGroupMetadataKeyVersion && e.Value is null)
        {
            if (_groups.TryGetValue(e.Group, out var dropped))
            {
                dropped.Consumer = null;
                if (dropped.ProtocolType == "consumer")
                {
                    dropped.ProtocolType = null;
                }
            }

            return;
        }

        if (_loaded)
        {
            return;
        }

        var g = GetOrCreate(e.Group);
        var cg = g.Consumer ??= new ConsumerGroupData();
        g.ProtocolType = "consumer";
        ConsumerMember MemberOf(string id) => cg.Members.TryGetValue(id, out var m) ? m : cg.Members[id] = new ConsumerMember { MemberId = id };
        switch (e.Value)
        {
            case ConsumerGroupMetadataValue v:
                cg.Epoch = v.Epoch;
                break;
            case ConsumerGroupPartitionMetadataValue v:
                cg.SubscribedTopics = v.Topics.ToDictionary(t => t.TopicName, t => (t.TopicId, t.NumPartitions), StringComparer.Ordinal);
                break;
            case ConsumerGroupTargetAssignmentMetadataValue v:
                cg.AssignmentEpoch = v.AssignmentEpoch;
                break;
            case ConsumerGroupMemberMetadataValue v:
                {
                    var m = MemberOf(e.Member!);
                    m.InstanceId = v.InstanceId;
                    m.RackId = v.RackId;
                    m.ClientId = v.ClientId;
                    m.ClientHost = v.ClientHost;
                    m.SubscribedTopicNames = v.SubscribedTopicNames;
                    m.SubscribedTopicRegex = v.SubscribedTopicRegex;
                    m.RebalanceTimeoutMs = v.RebalanceTimeoutMs;
                    m.ServerAssignor = v.ServerAssignor;
                    break;
                }

            case ConsumerGroupTargetAssignmentMemberValue v:
                cg.Target[e.Member!] = new TopicPartitionSet(v.TopicPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p))));
                break;
            case ConsumerGroupCurrentMemberAssignmentValue v:
                {
                    var m = MemberOf(e.Member!);
                    m.MemberEpoch = v.MemberEpoch;
                    m.PreviousMemberEpoch = v.PreviousMemberEpoch;
                    m.State = Enum.IsDefined((ConsumerMemberState)v.State) ? (ConsumerMemberState)v.State : ConsumerMemberState.Unknown;
                    cg.SetOwned(
                        m,
                        new TopicPartitionSet(v.AssignedPartitions.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p)))),
                        new TopicPartitionSet(v.PartitionsPendingRevocation.SelectMany(t => t.Partitions.Select(p => (t.TopicId, p)))));
                    break;
                }

            case null when e.KeyVersion == OffsetsTopic.ConsumerGroupMemberMetadataKeyVersion:
                if (cg.Members.Remove(e.Member!, out var gone))
                {
                    cg.SetOwned(gone, [], []);
                }

                break;
            case null when e.KeyVersion == OffsetsTopic.ConsumerGroupTargetMemberKeyVersion:
                cg.Target.Remove(e.Member!);
                break;
        }
    }

    /// <summary>After a load: every consumer-protocol member gets a fresh session, as in Kafka.</summary>
    private void OnConsumerGroupsLoaded()
    {
        foreach (var g in _groups.Values)
        {
            if (g.Consumer is not { } cg)
            {
                continue;
            }

            foreach (var m in cg.Members.Values)
            {
                m.LastHeartbeat = Now;
                ScheduleSession(g.Id, m);
            }

            _log.LogInformation("loaded consumer group {Group} epoch {Epoch} with {Count} members", g.Id, cg.Epoch, cg.Members.Count);
        }
    }

    // ------------------------------------------------------------------ offsets and admin

    /// <summary>
    /// Kafka's ConsumerGroup.validateOffsetCommit: a commit without a member (generation -1) to a
    /// group without members; else the member must be known (UNKNOWN_MEMBER_ID) and commit with
    /// its current epoch (STALE_MEMBER_EPOCH).
    /// </summary>
    private static ErrorCode CheckConsumerCommitter(ConsumerGroupData cg, int memberEpoch, string memberId)
    {
        if (memberEpoch < 0 && cg.Members.Count == 0)
        {
            return ErrorCode.None;
        }

        if (!cg.Members.TryGetValue(memberId, out var m))
        {
            return ErrorCode.UnknownMemberId;
        }

        return memberEpoch != m.MemberEpoch ? ErrorCode.StaleMemberEpoch : ErrorCode.None;
    }

    /// <summary>OffsetFetch v9+ with a member: Kafka's ConsumerGroup.validateOffsetFetch.</summary>
    public ErrorCode ValidateOffsetFetch(string groupId, string? memberId, int memberEpoch)
    {
        if (memberId is null && memberEpoch < 0)
        {
            return ErrorCode.None;
        }

        if (!_groups.TryGetValue(groupId, out var g) || g.Consumer is not { } cg)
        {
            // A classic group checks no member on OffsetFetch; a group that does not exist has nothing to check.
            return ErrorCode.None;
        }

        if (memberId is null || !cg.Members.TryGetValue(memberId, out var m))
        {
            return ErrorCode.UnknownMemberId;
        }

        return memberEpoch != m.MemberEpoch ? ErrorCode.StaleMemberEpoch : ErrorCode.None;
    }

    /// <summary>ConsumerGroupDescribe of one group.</summary>
    public ConsumerGroupDescription DescribeConsumerGroup(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var g) || g.State == GroupState.Dead || g.Consumer is not { } cg)
        {
            return new ConsumerGroupDescription(groupId, ErrorCode.GroupIdNotFound, "Dead", -1, -1, string.Empty, []);
        }

        var names = cg.SubscribedTopics.ToDictionary(t => t.Value.Id, t => t.Key);
        var topics = _topics();
        List<(Uuid, string, IReadOnlyList<int>)> Named(TopicPartitionSet set) =>
            set.Select(kv => (kv.Key, names.GetValueOrDefault(kv.Key) ?? topics?.All.FirstOrDefault(t => t.Id == kv.Key)?.Name ?? string.Empty, (IReadOnlyList<int>)kv.Value.ToList())).ToList();
        return new ConsumerGroupDescription(
            g.Id,
            ErrorCode.None,
            cg.StateName,
            cg.Epoch,
            cg.AssignmentEpoch,
            AssignorOf(cg),
            cg.Members.Values.Select(m => new ConsumerMemberDescription(
                m.MemberId,
                m.InstanceId,
                m.RackId,
                m.MemberEpoch,
                m.ClientId,
                m.ClientHost,
                m.SubscribedTopicNames,
                m.SubscribedTopicRegex,
                Named(m.Assigned),
                Named(cg.Target.GetValueOrDefault(m.MemberId) ?? []))).ToList());
    }

    /// <summary>The tombstones of a consumer-protocol group without members (DeleteGroups, or a classic group taking its id).</summary>
    private List<RecordToWrite> ConsumerGroupTombstones(Group g)
    {
        var now = Now;
        var records = new List<RecordToWrite>();
        foreach (var member in g.Consumer!.Target.Keys)
        {
            records.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupTargetMemberKeyVersion, g.Id, member), null, now));
        }

        records.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupTargetMetadataKeyVersion, g.Id), null, now));
        records.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupPartitionMetadataKeyVersion, g.Id), null, now));
        records.Add(new RecordToWrite(OffsetsTopic.ConsumerGroupKey(OffsetsTopic.ConsumerGroupMetadataKeyVersion, g.Id), null, now));
        return records;
    }

    /// <summary>Used by tests: a consumer-protocol member's (epoch, state, assigned, pending), or null.</summary>
    internal (int Epoch, ConsumerMemberState State, int Assigned, int Pending)? ConsumerMemberOf(string groupId, string memberId) =>
        _groups.TryGetValue(groupId, out var g) && g.Consumer?.Members.GetValueOrDefault(memberId) is { } m
            ? (m.MemberEpoch, m.State, m.Assigned.PartitionCount, m.PendingRevocation.PartitionCount)
            : null;
}
