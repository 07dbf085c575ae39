using System.Text;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator;

/// <summary>A group as ListGroups and DescribeGroups show it.</summary>
/// <param name="GroupId">The id.</param>
/// <param name="State">Kafka's state name.</param>
/// <param name="ProtocolType">e.g. consumer.</param>
/// <param name="ProtocolName">The chosen assignor while stable.</param>
/// <param name="Members">Members with their subscription and assignment.</param>
public sealed record GroupDescription(string GroupId, string State, string ProtocolType, string ProtocolName, IReadOnlyList<(string MemberId, string? InstanceId, string ClientId, string ClientHost, byte[] Metadata, byte[] Assignment)> Members);

internal sealed partial class GroupCoordinatorShard
{
    /// <summary>
    /// OffsetCommit: checks the member (unless a simple, generation -1 commit to a group without
    /// members) and writes the offsets; they count once durable. A failed write fails every
    /// partition that was accepted, with the error Kafka gives.
    /// </summary>
    public CoordinatorResult<List<(string Topic, int Partition, ErrorCode Error)>> Commit(string groupId, int generationId, string memberId, string? groupInstanceId, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets)
    {
        var (results, records) = OffsetCommitRecords(groupId, CheckCommitter(groupId, generationId, memberId, groupInstanceId), offsets);
        return records.Count == 0
            ? CoordinatorResult<List<(string, int, ErrorCode)>>.Of(results)
            : CoordinatorResult<List<(string, int, ErrorCode)>>.Of(records, results, failed => FailAccepted(results, failed));
    }

    /// <summary>
    /// The per-partition answer of an offset commit (the group's <paramref name="error"/>, an
    /// unknown partition, metadata too large) and the offset records of the partitions accepted;
    /// OffsetCommit and TxnOffsetCommit differ only in how the records are written.
    /// </summary>
    private (List<(string Topic, int Partition, ErrorCode Error)> Results, List<RecordToWrite> Records) OffsetCommitRecords(string groupId, ErrorCode error, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets)
    {
        var results = new List<(string, int, ErrorCode)>(offsets.Count);
        var records = new List<RecordToWrite>();
        var now = Now;
        foreach (var o in offsets)
        {
            var e = error != ErrorCode.None ? error
                : !_partitionExists(o.Topic, o.Partition) ? ErrorCode.UnknownTopicOrPartition
                : Encoding.UTF8.GetByteCount(o.Metadata ?? string.Empty) > _options.OffsetMetadataMaxBytes ? ErrorCode.OffsetMetadataTooLarge
                : ErrorCode.None;
            results.Add((o.Topic, o.Partition, e));
            if (e == ErrorCode.None)
            {
                var committed = new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata ?? string.Empty, now);
                records.Add(new RecordToWrite(OffsetsTopic.OffsetKey(groupId, o.Topic, o.Partition), OffsetsTopic.OffsetValue(committed), now));
            }
        }

        return (results, records);
    }

    /// <summary>The answer when the records could not be written: every accepted partition gets <paramref name="failed"/>.</summary>
    private static List<(string Topic, int Partition, ErrorCode Error)> FailAccepted(List<(string Topic, int Partition, ErrorCode Error)> results, ErrorCode failed) =>
        results.Select(r => (r.Topic, r.Partition, r.Error == ErrorCode.None ? failed : r.Error)).ToList();

    private ErrorCode CheckCommitter(string groupId, int generationId, string memberId, string? groupInstanceId)
    {
        if (string.IsNullOrEmpty(groupId))
        {
            return ErrorCode.InvalidGroupId;
        }

        _groups.TryGetValue(groupId, out var g);
        if (g is null)
        {
            // Generation -1: an admin client or a consumer without group management creates a simple group.
            return generationId < 0 ? ErrorCode.None : ErrorCode.IllegalGeneration;
        }

        if (g.Consumer is { } cg)
        {
            return CheckConsumerCommitter(cg, generationId, memberId);
        }

        // Kafka's ClassicGroup.validateOffsetCommit, in its order.
        if (generationId < 0 && g.State == GroupState.Empty)
        {
            return ErrorCode.None;
        }

        if (generationId >= 0 || memberId.Length > 0 || groupInstanceId is not null)
        {
            if (ValidateMember(g, memberId, groupInstanceId) is var invalid && invalid != ErrorCode.None)
            {
                return invalid;
            }

            if (generationId != g.GenerationId)
            {
                return ErrorCode.IllegalGeneration;
            }
        }
        else if (g.State != GroupState.Empty)
        {
            return ErrorCode.UnknownMemberId;
        }

        if (g.State == GroupState.CompletingRebalance)
        {
            return ErrorCode.RebalanceInProgress;
        }

        if (g.Members.TryGetValue(memberId, out var m))
        {
            m.LastHeartbeat = Now;
        }

        return ErrorCode.None;
    }

    /// <summary>
    /// OffsetFetch: the committed offsets asked for (null: all of the group's), -1 where none.
    /// Offsets pending in an open transaction are not visible; with <paramref name="requireStable"/>
    /// (v7+) a partition that has one answers UNSTABLE_OFFSET_COMMIT instead, and the client retries.
    /// </summary>
    public List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)> Fetch(string groupId, IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)>? topics, bool requireStable = false)
    {
        _groups.TryGetValue(groupId, out var g);
        if (topics is null)
        {
            return g is null ? [] : g.Offsets.OrderBy(o => o.Key.Topic, StringComparer.Ordinal).ThenBy(o => o.Key.Partition).Select(o => Answer(o.Key.Topic, o.Key.Partition, o.Value)).ToList();
        }

        return topics.SelectMany(t => t.Partitions.Select(p => Answer(t.Topic, p, g?.Offsets.GetValueOrDefault((t.Topic, p))))).ToList();

        (string, int, CommittedOffset?, ErrorCode) Answer(string topic, int partition, CommittedOffset? offset) =>
            requireStable && HasPendingTransactionalOffsets(groupId, topic, partition)
                ? (topic, partition, null, ErrorCode.UnstableOffsetCommit)
                : (topic, partition, offset, ErrorCode.None);
    }

    /// <summary>ListGroups, optionally filtered by state names.</summary>
    /// <remarks>A consumer-protocol group has the type "consumer" and Kafka's states for it (Empty, Assigning, Reconciling, Stable); classic ones "classic".</remarks>
    public List<(string GroupId, string ProtocolType, string State, string Type)> List(IReadOnlyCollection<string> statesFilter) =>
        _groups.Values
            .Where(g => g.State != GroupState.Dead)
            .Select(g => g.Consumer is { } cg ? (g.Id, "consumer", cg.StateName, "consumer") : (g.Id, g.ProtocolType ?? string.Empty, g.State.ToString(), "classic"))
            .Where(g => statesFilter.Count == 0 || statesFilter.Contains(g.Item3, StringComparer.OrdinalIgnoreCase))
            .ToList();

    /// <summary>DescribeGroups: an unknown group is described as Dead with no members, as Kafka does.</summary>
    public GroupDescription Describe(string groupId)
    {
        // A consumer-protocol group is not a classic group: described as one that does not exist, as Kafka does for DescribeGroups before v6.
        if (!_groups.TryGetValue(groupId, out var g) || g.Consumer is not null)
        {
            return new GroupDescription(groupId, "Dead", string.Empty, string.Empty, []);
        }

        var stable = g.State is GroupState.Stable or GroupState.CompletingRebalance;
        return new GroupDescription(
            g.Id,
            g.State.ToString(),
            g.ProtocolType ?? string.Empty,
            stable ? g.ProtocolName ?? string.Empty : string.Empty,
            g.Members.Values.Select(m => (m.MemberId, m.GroupInstanceId, m.ClientId, m.ClientHost, stable && g.ProtocolName is not null ? m.MetadataFor(g.ProtocolName) : [], m.Assignment)).ToList());
    }

    /// <summary>DeleteGroups: only groups without members; their offsets and metadata get tombstones, and the group goes when they are applied.</summary>
    public CoordinatorResult<ErrorCode> Delete(string groupId)
    {
        if (!_groups.TryGetValue(groupId, out var g) || g.State == GroupState.Dead)
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.GroupIdNotFound);
        }

        if (g.Members.Count > 0 || g.State != GroupState.Empty || g.Consumer is { Members.Count: > 0 })
        {
            return CoordinatorResult<ErrorCode>.Of(ErrorCode.NonEmptyGroup);
        }

        var now = Now;
        // Offsets pending in open transactions go too (one tombstone where there is a committed
        // offset as well), as Kafka's deleteAllOffsets: a later COMMIT marker brings none back.
        var tombstones = g.Offsets.Keys.Concat(PendingPartitions(groupId).Where(k => !g.Offsets.ContainsKey(k)))
            .Select(k => new RecordToWrite(OffsetsTopic.OffsetKey(groupId, k.Topic, k.Partition), null, now))
            .ToList();
        if (g.Consumer is not null)
        {
            tombstones.AddRange(ConsumerGroupTombstones(g));
        }

        tombstones.Add(new RecordToWrite(OffsetsTopic.GroupKey(groupId), null, now));
        return CoordinatorResult<ErrorCode>.Of(tombstones, ErrorCode.None, error => error);
    }

    /// <summary>OffsetDelete: removes committed offsets of topics the group's members don't subscribe to.</summary>
    public CoordinatorResult<(ErrorCode Error, List<(string Topic, int Partition, ErrorCode Error)> Results)> DeleteOffsets(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions)
    {
        if (!_groups.TryGetValue(groupId, out var g))
        {
            return CoordinatorResult<(ErrorCode, List<(string, int, ErrorCode)>)>.Of((ErrorCode.GroupIdNotFound, []));
        }

        var subscribed = g.State == GroupState.Empty || g.ProtocolType != "consumer" || g.ProtocolName is null
            ? new HashSet<string>(StringComparer.Ordinal)
            : g.Members.Values.SelectMany(m => SubscribedTopics(m.MetadataFor(g.ProtocolName))).ToHashSet(StringComparer.Ordinal);
        var results = new List<(string, int, ErrorCode)>();
        var tombstones = new List<RecordToWrite>();
        var now = Now;
        foreach (var (topic, partition) in partitions)
        {
            if (subscribed.Contains(topic))
            {
                results.Add((topic, partition, ErrorCode.GroupSubscribedToTopic));
                continue;
            }

            results.Add((topic, partition, ErrorCode.None));
            if (g.Offsets.ContainsKey((topic, partition)) || HasPendingTransactionalOffsets(groupId, topic, partition))
            {
                tombstones.Add(new RecordToWrite(OffsetsTopic.OffsetKey(groupId, topic, partition), null, now));
            }
        }

        return tombstones.Count == 0
            ? CoordinatorResult<(ErrorCode, List<(string, int, ErrorCode)>)>.Of((ErrorCode.None, results))
            : CoordinatorResult<(ErrorCode, List<(string, int, ErrorCode)>)>.Of(tombstones, (ErrorCode.None, results), error => (error, []));
    }

    /// <summary>The topics of a consumer protocol subscription (version int16, then an array of int16-length strings).</summary>
    internal static IEnumerable<string> SubscribedTopics(byte[] subscription)
    {
        var topics = new List<string>();
        try
        {
            var r = new KafkaReader(subscription);
            r.ReadInt16();
            var n = r.ReadArrayLength(compact: false);
            for (var i = 0; i < n; i++)
            {
                topics.Add(r.ReadString(compact: false));
            }
        }
        catch (KafkaProtocolException)
        {
        }

        return topics;
    }

    /// <summary>Used by tests: the committed offset, or null.</summary>
    internal CommittedOffset? Committed(string groupId, string topic, int partition) =>
        _groups.TryGetValue(groupId, out var g) ? g.Offsets.GetValueOrDefault((topic, partition)) : null;

    /// <summary>Used by tests: the group's state, or null when the shard has no such group.</summary>
    internal GroupState? StateOf(string groupId) => _groups.TryGetValue(groupId, out var g) ? g.State : null;
}
