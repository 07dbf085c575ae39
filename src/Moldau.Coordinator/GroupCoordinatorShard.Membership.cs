using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator;

/// <summary>What a member sends with JoinGroup.</summary>
/// <param name="GroupId">The group.</param>
/// <param name="MemberId">Its member id, empty on the first join.</param>
/// <param name="GroupInstanceId">Its static instance id, or null.</param>
/// <param name="ClientId">The client id of the request header.</param>
/// <param name="ClientHost">The peer's address.</param>
/// <param name="SessionTimeoutMs">session.timeout.ms</param>
/// <param name="RebalanceTimeoutMs">max.poll.interval.ms (v1+), else the session timeout.</param>
/// <param name="ProtocolType">e.g. "consumer".</param>
/// <param name="Protocols">The assignors it supports, preferred first, with its subscription.</param>
/// <param name="RequireKnownMemberId">v4+: a first join gets MEMBER_ID_REQUIRED (KIP-394).</param>
/// <param name="SupportsSkipAssignment">v9+: a static leader that rejoins may be told to skip the assignment (KIP-814).</param>
public sealed record JoinRequest(string GroupId, string MemberId, string? GroupInstanceId, string ClientId, string ClientHost, int SessionTimeoutMs, int RebalanceTimeoutMs, string ProtocolType, IReadOnlyList<(string Name, byte[] Metadata)> Protocols, bool RequireKnownMemberId, bool SupportsSkipAssignment = false);

internal sealed partial class GroupCoordinatorShard
{
    private static JoinResult JoinError(ErrorCode error, string memberId = "") => new((short)error, -1, null, null, string.Empty, memberId, []);

    /// <summary>JoinGroup: the answer completes when the group's join phase ends (or at once for an error).</summary>
    public CoordinatorResult<Task<JoinResult>> Join(JoinRequest request)
    {
        var response = JoinCore(request);
        return Done(_groups.GetValueOrDefault(request.GroupId), response);
    }

    private Task<JoinResult> JoinCore(JoinRequest request)
    {
        if (string.IsNullOrEmpty(request.GroupId))
        {
            return Task.FromResult(JoinError(ErrorCode.InvalidGroupId));
        }

        if (request.SessionTimeoutMs < _options.MinSessionTimeoutMs || request.SessionTimeoutMs > _options.MaxSessionTimeoutMs)
        {
            return Task.FromResult(JoinError(ErrorCode.InvalidSessionTimeout));
        }

        // A member id names a member of an existing group: Kafka creates a group only for a first join.
        if (request.MemberId.Length > 0 && (!_groups.TryGetValue(request.GroupId, out var existing) || existing.State == GroupState.Dead))
        {
            return Task.FromResult(JoinError(ErrorCode.UnknownMemberId, request.MemberId));
        }

        var g = GetOrCreate(request.GroupId);
        if (g.Consumer is not null)
        {
            // Without online migration a consumer-protocol group with members refuses classic
            // members, as Kafka does; an empty one becomes a classic group (its offsets stay).
            if (g.Consumer.Members.Count > 0)
            {
                return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol, request.MemberId));
            }

            _emitted.AddRange(ConsumerGroupTombstones(g));
            g.Consumer = null;
            g.ProtocolType = null;
            g.GenerationId = 0;
        }

        if (!AcceptsJoiningMember(g, request.MemberId))
        {
            // Kafka drops the member that would go past group.max.size (during a rebalance,
            // the last to rejoin), and answers without a member id.
            if (g.Members.TryGetValue(request.MemberId, out var refused))
            {
                RemoveMember(g, refused);
                TryCompleteJoin(g);
            }

            g.PendingMembers.Remove(request.MemberId);
            return Task.FromResult(JoinError(ErrorCode.GroupMaxSizeReached));
        }

        if (!ProtocolsFit(g, request))
        {
            return Task.FromResult(JoinError(ErrorCode.InconsistentGroupProtocol));
        }

        GroupMember? member;
        if (request.MemberId.Length == 0)
        {
            var newId = $"{request.ClientId}-{Guid.NewGuid()}";
            if (request.GroupInstanceId is { } instance && g.StaticMembers.TryGetValue(instance, out var oldId) && g.Members.TryGetValue(oldId, out var old))
            {
                // A static member restarted: it takes over its old place under a new id; the old id is fenced.
                var previousLeader = g.LeaderId;
                old.PendingJoin?.TrySetResult(JoinError(ErrorCode.FencedInstanceId, oldId));
                old.PendingSync?.TrySetResult(new SyncResult((short)ErrorCode.FencedInstanceId, null, null, []));
                g.SetPendingJoin(old, null);
                old.PendingSync = null;
                g.Rename(oldId, newId);
                g.StaticMembers[instance] = newId;
                if (g.PendingSyncMembers.Remove(oldId))
                {
                    g.PendingSyncMembers.Add(newId);
                }

                if (g.LeaderId == oldId)
                {
                    g.LeaderId = newId;
                }

                member = old;
                Update(g, member, request);
                if (g.State == GroupState.Stable && SelectProtocol(g) == g.ProtocolName)
                {
                    // As Kafka: no rebalance while the group's assignor stays the same; the
                    // member keeps its assignment. A v9+ leader gets the members but skips
                    // the assignment; before v9 the answer names the previous leader, so the
                    // member acts as a follower.
                    PersistGroup(g);
                    if (request.SupportsSkipAssignment)
                    {
                        return Task.FromResult(CurrentJoin(g, member) with { SkipAssignment = g.LeaderId == newId });
                    }

                    member.LastHeartbeat = Now;
                    return Task.FromResult(new JoinResult(0, g.GenerationId, g.ProtocolType, g.ProtocolName, previousLeader ?? string.Empty, newId, []));
                }
            }
            else if (request.GroupInstanceId is null && request.RequireKnownMemberId)
            {
                // Forgotten once that JoinGroup's session timeout passes without the rejoin (KIP-394).
                g.PendingMembers[newId] = Now + request.SessionTimeoutMs;
                Arm(g.PendingMembers[newId]);
                return Task.FromResult(JoinError(ErrorCode.MemberIdRequired, newId));
            }
            else
            {
                member = AddMember(g, newId, request);
            }
        }
        else if (g.PendingMembers.Remove(request.MemberId))
        {
            member = AddMember(g, request.MemberId, request);
        }
        else if (ValidateMember(g, request.MemberId, request.GroupInstanceId) is var invalid && invalid != ErrorCode.None)
        {
            return Task.FromResult(JoinError(invalid, request.MemberId));
        }
        else
        {
            member = g.Members[request.MemberId];
            var unchanged = SameProtocols(member, request);
            Update(g, member, request);
            switch (g.State)
            {
                case GroupState.CompletingRebalance when unchanged:
                    return Task.FromResult(CurrentJoin(g, member));
                case GroupState.Stable when unchanged && g.LeaderId != member.MemberId:
                    return Task.FromResult(CurrentJoin(g, member));
            }
        }

        member.PendingJoin?.TrySetResult(JoinError(ErrorCode.UnknownMemberId, member.MemberId));
        var wait = new TaskCompletionSource<JoinResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        g.SetPendingJoin(member, wait);
        member.LastHeartbeat = Now;
        if (g.State != GroupState.PreparingRebalance)
        {
            PrepareRebalance(g);
        }

        TryCompleteJoin(g);
        return wait.Task;
    }

    /// <summary>
    /// group.max.size as Kafka counts it: while preparing a rebalance, the members that have
    /// rejoined (so a group over a lowered limit sheds its last rejoiners); otherwise all members.
    /// </summary>
    private bool AcceptsJoiningMember(Group g, string memberId) => g.State switch
    {
        GroupState.PreparingRebalance =>
            (g.Members.TryGetValue(memberId, out var m) && m.PendingJoin is not null)
            || g.PendingJoinCount < _options.MaxSize,
        GroupState.CompletingRebalance or GroupState.Stable => g.Members.ContainsKey(memberId) || g.Members.Count < _options.MaxSize,
        _ => true,
    };

    private bool ProtocolsFit(Group g, JoinRequest request)
    {
        if (request.Protocols.Count == 0 || string.IsNullOrEmpty(request.ProtocolType))
        {
            return false;
        }

        // The other members are all but the one joining (by member id, and for a static member
        // by instance id); the group's counts minus those one or two say what the others support.
        GroupMember? self = g.Members.GetValueOrDefault(request.MemberId);
        GroupMember? sameInstance = request.GroupInstanceId is { } instance
            && g.StaticMembers.TryGetValue(instance, out var staticId)
            && g.Members.TryGetValue(staticId, out var s)
            && s != self
            && s.GroupInstanceId == instance
            ? s
            : null;
        var others = g.Members.Count - (self is null ? 0 : 1) - (sameInstance is null ? 0 : 1);
        if (others == 0)
        {
            return true;
        }

        int Excluded(Func<GroupMember, bool> applies) => (self is not null && applies(self) ? 1 : 0) + (sameInstance is not null && applies(sameInstance) ? 1 : 0);

        if (g.ProtocolTypeCount(request.ProtocolType) - Excluded(m => m.ProtocolType == request.ProtocolType) != others)
        {
            return false;
        }

        return request.Protocols.Any(p => g.SupportCount(p.Name) - Excluded(m => m.Protocols.Exists(q => q.Name == p.Name)) == others);
    }

    private static bool SameProtocols(GroupMember m, JoinRequest request) =>
        m.Protocols.Count == request.Protocols.Count
        && m.Protocols.Zip(request.Protocols).All(p => p.First.Name == p.Second.Name && p.First.Metadata.AsSpan().SequenceEqual(p.Second.Metadata));

    private static void Update(Group g, GroupMember m, JoinRequest request)
    {
        g.SetProtocols(m, [.. request.Protocols]);
        m.SessionTimeoutMs = request.SessionTimeoutMs;
        m.RebalanceTimeoutMs = request.RebalanceTimeoutMs > 0 ? request.RebalanceTimeoutMs : request.SessionTimeoutMs;
    }

    private GroupMember AddMember(Group g, string memberId, JoinRequest request)
    {
        var m = new GroupMember
        {
            MemberId = memberId,
            GroupInstanceId = request.GroupInstanceId,
            ClientId = request.ClientId,
            ClientHost = request.ClientHost,
            ProtocolType = request.ProtocolType,
            LastHeartbeat = Now,
        };
        Update(g, m, request);
        g.Add(m);
        if (request.GroupInstanceId is { } instance)
        {
            g.StaticMembers[instance] = memberId;
        }

        g.LeaderId ??= memberId;
        return m;
    }

    private JoinResult CurrentJoin(Group g, GroupMember m)
    {
        m.LastHeartbeat = Now;
        var members = g.LeaderId == m.MemberId
            ? g.Members.Values.Select(x => (x.MemberId, x.GroupInstanceId, x.MetadataFor(g.ProtocolName!))).ToList()
            : [];
        return new JoinResult(0, g.GenerationId, g.ProtocolType, g.ProtocolName, g.LeaderId ?? string.Empty, m.MemberId, members);
    }

    private void PrepareRebalance(Group g)
    {
        var now = Now;
        if (g.State == GroupState.CompletingRebalance)
        {
            foreach (var m in g.Members.Values)
            {
                m.PendingSync?.TrySetResult(new SyncResult((short)ErrorCode.RebalanceInProgress, null, null, []));
                m.PendingSync = null;
            }
        }

        foreach (var m in g.Members.Values)
        {
            m.Assignment = [];
        }

        if (g.State == GroupState.Empty)
        {
            g.InitialDelayUntil = now + _options.InitialRebalanceDelayMs;
        }

        g.State = GroupState.PreparingRebalance;
        g.StateTimestamp = now;
        g.PendingSyncMembers.Clear();
        g.JoinDeadline = now + g.Members.Values.Select(m => m.RebalanceTimeoutMs).DefaultIfEmpty(_options.InitialRebalanceDelayMs).Max();
    }

    private void TryCompleteJoin(Group g)
    {
        if (g.State == GroupState.PreparingRebalance
            && Now >= g.InitialDelayUntil
            && g.PendingMembers.Count == 0
            && g.PendingJoinCount == g.Members.Count)
        {
            CompleteJoin(g);
        }
    }

    private void CompleteJoin(Group g)
    {
        g.GenerationId++;
        g.StateTimestamp = Now;
        if (g.Members.Count == 0)
        {
            g.State = GroupState.Empty;
            g.ProtocolName = null;
            g.LeaderId = null;
            PersistGroup(g);
            return;
        }

        var first = g.Members.Values.First();
        g.ProtocolType = first.ProtocolType;
        g.ProtocolName = SelectProtocol(g);
        // The leader must be a member that rejoined (a static member that did not is kept).
        if (g.LeaderId is null || !g.Members.TryGetValue(g.LeaderId, out var leader) || leader.PendingJoin is null)
        {
            g.LeaderId = g.Members.Values.FirstOrDefault(m => m.PendingJoin is not null)?.MemberId ?? first.MemberId;
        }

        g.State = GroupState.CompletingRebalance;

        // As Kafka: members that don't send SyncGroup within the rebalance timeout are removed.
        g.PendingSyncMembers.Clear();
        g.PendingSyncMembers.UnionWith(g.Members.Keys);
        g.SyncDeadline = Now + g.Members.Values.Max(m => m.RebalanceTimeoutMs);
        foreach (var m in g.Members.Values)
        {
            var result = CurrentJoin(g, m);
            m.PendingJoin?.TrySetResult(result);
            g.SetPendingJoin(m, null);
        }

        // The members' sessions run again from now on: the one place they can come due earlier.
        Arm(Deadline(g));
    }

    /// <summary>The protocol every member supports that most members prefer (Kafka's vote).</summary>
    private static string? SelectProtocol(Group g)
    {
        if (g.Members.Count == 0)
        {
            return null;
        }

        // Every member supports a candidate, so the support counts say which: one pass over the
        // members for the votes, not one per candidate.
        var candidates = g.Members.Values.First().Protocols.Select(p => p.Name).Distinct(StringComparer.Ordinal).Where(n => g.SupportCount(n) == g.Members.Count).ToList();
        var votes = new int[candidates.Count];
        foreach (var m in g.Members.Values)
        {
            foreach (var (name, _) in m.Protocols)
            {
                var i = candidates.IndexOf(name);
                if (i >= 0)
                {
                    votes[i]++;
                    break;
                }
            }
        }

        return candidates.Select((c, i) => (c, i)).OrderByDescending(x => votes[x.i]).ThenBy(x => x.i).Select(x => x.c).FirstOrDefault();
    }

    private void RemoveMember(Group g, GroupMember m)
    {
        g.Remove(m.MemberId);
        g.PendingSyncMembers.Remove(m.MemberId);
        if (m.GroupInstanceId is { } instance && g.StaticMembers.GetValueOrDefault(instance) == m.MemberId)
        {
            g.StaticMembers.Remove(instance);
        }

        m.PendingJoin?.TrySetResult(JoinError(ErrorCode.UnknownMemberId, m.MemberId));
        m.PendingSync?.TrySetResult(new SyncResult((short)ErrorCode.UnknownMemberId, null, null, []));
        if (g.LeaderId == m.MemberId)
        {
            g.LeaderId = g.Members.Keys.FirstOrDefault();
        }
    }

    private void AfterMemberLeft(Group g)
    {
        if (g.State == GroupState.PreparingRebalance)
        {
            TryCompleteJoin(g);
        }
        else if (g.Members.Count == 0)
        {
            g.State = GroupState.Empty;
            g.StateTimestamp = Now;
            g.GenerationId++;
            g.ProtocolName = null;
            g.LeaderId = null;
            PersistGroup(g);
        }
        else
        {
            PrepareRebalance(g);
        }
    }

    /// <summary>
    /// Whether a request names a current member, in Kafka's order: a static member's instance id
    /// is looked up first, so an id replaced by a newer one with the same instance id is fenced
    /// (FENCED_INSTANCE_ID, fatal for the client) rather than unknown (which would make it rejoin
    /// and replace the newer one in turn).
    /// </summary>
    private static ErrorCode ValidateMember(Group g, string memberId, string? groupInstanceId)
    {
        if (groupInstanceId is not null)
        {
            if (!g.StaticMembers.TryGetValue(groupInstanceId, out var current))
            {
                return ErrorCode.UnknownMemberId;
            }

            if (current != memberId)
            {
                return ErrorCode.FencedInstanceId;
            }
        }

        return g.Members.ContainsKey(memberId) ? ErrorCode.None : ErrorCode.UnknownMemberId;
    }

    /// <summary>
    /// SyncGroup: the leader hands in the assignment; everyone gets theirs once it is recorded.
    /// If it cannot be recorded, as in Kafka, no one gets it: every member waiting in SyncGroup
    /// gets the error and the group rebalances.
    /// </summary>
    public CoordinatorResult<Task<SyncResult>> Sync(string groupId, int generationId, string memberId, string? groupInstanceId, string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments)
    {
        static CoordinatorResult<Task<SyncResult>> Error(ErrorCode e) => CoordinatorResult<Task<SyncResult>>.Of(Task.FromResult(new SyncResult((short)e, null, null, [])));
        if (!_groups.TryGetValue(groupId, out var g))
        {
            return Error(ErrorCode.UnknownMemberId);
        }

        if (ValidateMember(g, memberId, groupInstanceId) is var invalid && invalid != ErrorCode.None)
        {
            return Error(invalid);
        }

        var m = g.Members[memberId];

        if (generationId != g.GenerationId)
        {
            return Error(ErrorCode.IllegalGeneration);
        }

        if ((protocolType is not null && protocolType != g.ProtocolType) || (protocolName is not null && protocolName != g.ProtocolName))
        {
            return Error(ErrorCode.InconsistentGroupProtocol);
        }

        m.LastHeartbeat = Now;
        if (g.State is GroupState.CompletingRebalance or GroupState.Stable)
        {
            g.PendingSyncMembers.Remove(memberId);
        }

        switch (g.State)
        {
            case GroupState.PreparingRebalance:
                return Error(ErrorCode.RebalanceInProgress);
            case GroupState.Stable:
                return Done(g, Task.FromResult(new SyncResult(0, g.ProtocolType, g.ProtocolName, m.Assignment)));
            case GroupState.CompletingRebalance:
                break;
            default:
                return Error(ErrorCode.UnknownMemberId);
        }

        var wait = new TaskCompletionSource<SyncResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        m.PendingSync?.TrySetResult(new SyncResult((short)ErrorCode.RebalanceInProgress, null, null, []));
        m.PendingSync = wait;
        if (memberId != g.LeaderId)
        {
            return Done(g, wait.Task);
        }

        var given = assignments.GroupBy(a => a.MemberId).ToDictionary(a => a.Key, a => a.Last().Assignment, StringComparer.Ordinal);
        var now = Now;
        var value = GroupValue(g, member => given.GetValueOrDefault(member.MemberId) ?? []);
        value.CurrentStateTimestamp = now;
        var generation = g.GenerationId;
        return CoordinatorResult<Task<SyncResult>>.Of(
            [new RecordToWrite(OffsetsTopic.GroupKey(g.Id), OffsetsTopic.GroupValue(value), now)],
            wait.Task,
            failed: error =>
            {
                foreach (var member in g.Members.Values)
                {
                    member.Assignment = [];
                    member.PendingSync?.TrySetResult(new SyncResult((short)error, null, null, []));
                    member.PendingSync = null;
                }

                if (g.State == GroupState.CompletingRebalance && g.GenerationId == generation)
                {
                    PrepareRebalance(g);
                    Arm(Deadline(g));
                }

                return wait.Task;
            },
            committed: () =>
            {
                foreach (var member in g.Members.Values)
                {
                    member.Assignment = given.GetValueOrDefault(member.MemberId) ?? [];
                }

                g.State = GroupState.Stable;
                g.StateTimestamp = now;
                foreach (var member in g.Members.Values)
                {
                    member.PendingSync?.TrySetResult(new SyncResult(0, g.ProtocolType, g.ProtocolName, member.Assignment));
                    member.PendingSync = null;
                }

                Arm(Deadline(g));
            });
    }

    /// <summary>Heartbeat: keeps the session alive and tells the member about a rebalance.</summary>
    public CoordinatorResult<ErrorCode> Heartbeat(string groupId, int generationId, string memberId, string? groupInstanceId) =>
        CoordinatorResult<ErrorCode>.Of(HeartbeatCore(groupId, generationId, memberId, groupInstanceId));

    private ErrorCode HeartbeatCore(string groupId, int generationId, string memberId, string? groupInstanceId)
    {
        if (!_groups.TryGetValue(groupId, out var g))
        {
            return ErrorCode.UnknownMemberId;
        }

        if (ValidateMember(g, memberId, groupInstanceId) is var invalid && invalid != ErrorCode.None)
        {
            return invalid;
        }

        var m = g.Members[memberId];

        if (generationId != g.GenerationId)
        {
            return ErrorCode.IllegalGeneration;
        }

        m.LastHeartbeat = Now;
        return g.State == GroupState.PreparingRebalance ? ErrorCode.RebalanceInProgress : ErrorCode.None;
    }

    /// <summary>LeaveGroup: removes members (by member id, or by instance id for static members).</summary>
    public CoordinatorResult<(ErrorCode Error, List<(string MemberId, string? InstanceId, ErrorCode Error)> Members)> Leave(string groupId, IReadOnlyList<(string MemberId, string? InstanceId)> leaving)
    {
        var response = LeaveCore(groupId, leaving);
        return Done(_groups.GetValueOrDefault(groupId), response);
    }

    private (ErrorCode Error, List<(string MemberId, string? InstanceId, ErrorCode Error)> Members) LeaveCore(string groupId, IReadOnlyList<(string MemberId, string? InstanceId)> leaving)
    {
        if (!_groups.TryGetValue(groupId, out var g))
        {
            return (ErrorCode.UnknownMemberId, leaving.Select(l => (l.MemberId, l.InstanceId, ErrorCode.UnknownMemberId)).ToList());
        }

        var results = new List<(string, string?, ErrorCode)>();
        var removed = false;
        foreach (var (memberId, instanceId) in leaving)
        {
            var id = instanceId is not null ? g.StaticMembers.GetValueOrDefault(instanceId) : memberId;
            if (instanceId is not null && memberId.Length > 0 && id is not null && id != memberId)
            {
                results.Add((memberId, instanceId, ErrorCode.FencedInstanceId));
                continue;
            }

            if (id is not null && g.PendingMembers.Remove(id))
            {
                results.Add((memberId, instanceId, ErrorCode.None));
                continue;
            }

            if (id is null || !g.Members.TryGetValue(id, out var m))
            {
                results.Add((memberId, instanceId, ErrorCode.UnknownMemberId));
                continue;
            }

            RemoveMember(g, m);
            removed = true;
            results.Add((memberId, instanceId, ErrorCode.None));
        }

        if (removed)
        {
            AfterMemberLeft(g);
        }

        return (leaving.Count == 1 ? results[0].Item3 : ErrorCode.None, results);
    }
}
