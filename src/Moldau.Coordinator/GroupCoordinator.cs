using Microsoft.Extensions.Logging;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Coordinator;

/// <summary>
/// The coordinator of classic consumer groups, on the <see cref="CoordinatorRuntime{TShard}"/>:
/// each group belongs to the shard of its <c>__consumer_offsets</c> partition
/// (<see cref="OffsetsTopic.PartitionFor"/>), where its operations run one at a time. A change
/// that must last (a committed offset, the group's metadata, a deletion) is answered once its
/// records are durable and applied; shards never wait for each other.
/// </summary>
public sealed class GroupCoordinator : IAsyncDisposable
{
    private readonly CoordinatorRuntime<GroupCoordinatorShard> _runtime;
    private readonly ILogger _log;
    private readonly int _partitions;

    /// <summary>Creates the coordinator.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="offsetsPartition">The log of a partition of __consumer_offsets (the caller creates the topic if needed); null or <see cref="IOException"/> when it is not available.</param>
    /// <param name="partitionExists">Whether a topic partition exists (offsets are committed only for those).</param>
    /// <param name="time">The clock (sessions, rebalances, offset retention).</param>
    /// <param name="log">Where to log.</param>
    public GroupCoordinator(GroupCoordinatorOptions options, Func<int, ICoordinatorLog?> offsetsPartition, Func<string, int, bool> partitionExists, TimeProvider time, ILogger log)
    {
        _log = log;
        _partitions = Math.Max(1, options.OffsetsTopicPartitions);
        _runtime = new CoordinatorRuntime<GroupCoordinatorShard>(
            OffsetsTopic.Name,
            _partitions,
            offsetsPartition,
            context => new GroupCoordinatorShard(context, options, partitionExists, log, () => Topics),
            time,
            log);
    }

    /// <summary>Creates the coordinator over local partition logs.</summary>
    /// <param name="options">Settings.</param>
    /// <param name="offsetsPartition">Opens (creating the topic if needed) a partition of __consumer_offsets; <see cref="IOException"/> when it is not available.</param>
    /// <param name="partitionExists">Whether a topic partition exists (offsets are committed only for those).</param>
    /// <param name="time">The clock.</param>
    /// <param name="log">Where to log.</param>
    public GroupCoordinator(GroupCoordinatorOptions options, Func<int, IPartitionLog> offsetsPartition, Func<string, int, bool> partitionExists, TimeProvider time, ILogger log)
        : this(options, p => new PartitionCoordinatorLog(offsetsPartition(p)), partitionExists, time, log)
    {
    }

    /// <summary>The broker's topics, for the assignments of consumer-protocol groups (KIP-848); null: no topics.</summary>
    public IGroupTopics? Topics { get; set; }

    /// <summary>ConsumerGroupHeartbeat (KIP-848): joins, heartbeats, leaves; the answer carries the member's epoch and assignment.</summary>
    public Task<ConsumerHeartbeatResult> ConsumerHeartbeatAsync(ConsumerHeartbeatRequest request) =>
        _runtime.WriteAsync(ShardOf(request.GroupId), s => s.ConsumerHeartbeat(request));

    /// <summary>ConsumerGroupDescribe: GROUP_ID_NOT_FOUND for a group that is not of the consumer protocol.</summary>
    public Task<ConsumerGroupDescription> DescribeConsumerGroupAsync(string groupId) =>
        _runtime.ReadAsync(ShardOf(groupId), s => s.DescribeConsumerGroup(groupId));

    /// <summary>OffsetFetch v9+ with a member id and epoch: UNKNOWN_MEMBER_ID or STALE_MEMBER_EPOCH for a consumer-protocol group's member, as Kafka checks it.</summary>
    public Task<ErrorCode> ValidateOffsetFetchAsync(string groupId, string? memberId, int memberEpoch) =>
        _runtime.ReadAsync(ShardOf(groupId), s => s.ValidateOffsetFetch(groupId, memberId, memberEpoch));

    /// <summary>Used by tests: a consumer-protocol member's epoch, state and partition counts.</summary>
    internal Task<(int Epoch, ConsumerMemberState State, int Assigned, int Pending)?> ConsumerMemberAsync(string groupId, string memberId) =>
        _runtime.ReadAsync(ShardOf(groupId), s => s.ConsumerMemberOf(groupId, memberId));

    /// <summary>The runtime the groups run on (tests).</summary>
    internal CoordinatorRuntime<GroupCoordinatorShard> Runtime => _runtime;

    private int ShardOf(string groupId) => OffsetsTopic.PartitionFor(groupId, _partitions);

    /// <summary>Replays the partitions of __consumer_offsets that exist, each into its shard, and starts the shards' timers.</summary>
    public void Start(IEnumerable<int> existingPartitions)
    {
        _runtime.Load(existingPartitions);
        var (groups, offsets, open) = Task.WhenAll(Enumerable.Range(0, _partitions).Select(p => _runtime.ReadAsync(p, s => (s.GroupCount, s.OffsetCount, s.OpenTransactionCount))))
            .GetAwaiter().GetResult()
            .Aggregate((0, 0, 0), (a, b) => (a.Item1 + b.GroupCount, a.Item2 + b.OffsetCount, a.Item3 + b.OpenTransactionCount));
        _log.LogInformation("group coordinator loaded {Groups} groups, {Offsets} committed offsets, offsets pending in {Open} open transactions", groups, offsets, open);
    }

    /// <summary>JoinGroup: completes when the group's join phase ends (or at once for an error).</summary>
    public Task<JoinResult> JoinAsync(JoinRequest request) =>
        _runtime.WriteAsync(ShardOf(request.GroupId), s => s.Join(request)).Unwrap();

    /// <summary>SyncGroup: the leader hands in the assignment; everyone gets theirs once it is recorded.</summary>
    public Task<SyncResult> SyncAsync(string groupId, int generationId, string memberId, string? groupInstanceId, string? protocolType, string? protocolName, IReadOnlyList<(string MemberId, byte[] Assignment)> assignments) =>
        _runtime.WriteAsync(ShardOf(groupId), s => s.Sync(groupId, generationId, memberId, groupInstanceId, protocolType, protocolName, assignments)).Unwrap();

    /// <summary>Heartbeat: keeps the session alive and tells the member about a rebalance.</summary>
    public Task<ErrorCode> HeartbeatAsync(string groupId, int generationId, string memberId, string? groupInstanceId) =>
        _runtime.WriteAsync(ShardOf(groupId), s => s.Heartbeat(groupId, generationId, memberId, groupInstanceId));

    /// <summary>LeaveGroup: removes members (by member id, or by instance id for static members).</summary>
    public Task<(ErrorCode Error, List<(string MemberId, string? InstanceId, ErrorCode Error)> Members)> LeaveAsync(string groupId, IReadOnlyList<(string MemberId, string? InstanceId)> leaving) =>
        _runtime.WriteAsync(ShardOf(groupId), s => s.Leave(groupId, leaving));

    /// <summary>OffsetCommit: answered once the offsets are durable (or with the error that kept them from being written).</summary>
    public Task<List<(string Topic, int Partition, ErrorCode Error)>> CommitAsync(string groupId, int generationId, string memberId, string? groupInstanceId, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets) =>
        _runtime.WriteAsync(ShardOf(groupId), s => s.Commit(groupId, generationId, memberId, groupInstanceId, offsets));

    /// <summary>
    /// KIP-890 part 1 for TxnOffsetCommit (Kafka's <c>scheduleTransactionalWriteOperation</c>):
    /// asks the transaction coordinator whether the group's __consumer_offsets partition is in the
    /// ongoing transaction of (transactional id, producer id, epoch) before the offsets are
    /// written, so a late TxnOffsetCommit cannot leave offsets pending after its transaction
    /// ended. Given (transactional id, producer id, producer epoch, partition), it answers the
    /// verify-only AddPartitionsToTxn partition error (None when the partition is in the
    /// transaction). Null (the default): no verification.
    /// </summary>
    public Func<string, long, short, int, Task<ErrorCode>>? TransactionVerifier { get; set; }

    /// <summary>
    /// TxnOffsetCommit: offsets committed inside the transaction of <paramref name="producerId"/>,
    /// answered once they are durable. They are pending (OffsetFetch does not see them) until the
    /// transaction's marker reaches this group's partition through
    /// <see cref="CompleteTransactionAsync"/>. <paramref name="generationId"/>,
    /// <paramref name="memberId"/> and <paramref name="groupInstanceId"/> are v3+'s consumer group
    /// metadata (KIP-447); older versions pass -1, "" and null. With a
    /// <see cref="TransactionVerifier"/>, the transaction is verified first; its refusal is every
    /// partition's error (PRODUCER_FENCED as INVALID_PRODUCER_EPOCH, a verification that could not
    /// complete, NETWORK_EXCEPTION, as COORDINATOR_LOAD_IN_PROGRESS, as Kafka answers them).
    /// </summary>
    public async Task<List<(string Topic, int Partition, ErrorCode Error)>> CommitTransactionalAsync(string groupId, string transactionalId, long producerId, short producerEpoch, int generationId, string memberId, string? groupInstanceId, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets)
    {
        if (string.IsNullOrEmpty(groupId))
        {
            return offsets.Select(o => (o.Topic, o.Partition, ErrorCode.InvalidGroupId)).ToList();
        }

        var shard = ShardOf(groupId);
        if (TransactionVerifier is { } verify)
        {
            var verified = await verify(transactionalId, producerId, producerEpoch, shard).ConfigureAwait(false) switch
            {
                ErrorCode.ProducerFenced => ErrorCode.InvalidProducerEpoch,
                ErrorCode.NetworkException => ErrorCode.CoordinatorLoadInProgress,
                var e => e,
            };
            if (verified != ErrorCode.None)
            {
                return offsets.Select(o => (o.Topic, o.Partition, verified)).ToList();
            }
        }

        return await _runtime.WriteAsync(shard, s => s.CommitTransactional(groupId, producerId, producerEpoch, generationId, memberId, groupInstanceId, offsets)).ConfigureAwait(false);
    }

    /// <summary>
    /// Ends a transaction on partition <paramref name="offsetsPartition"/> of __consumer_offsets
    /// (the transaction coordinator's WriteTxnMarkers for that partition; Kafka's
    /// <c>GroupCoordinator.completeTransaction</c>): in that partition's shard turn, appends the
    /// COMMIT or ABORT marker of <paramref name="producerId"/>, waits until it is durable, then
    /// makes the producer's pending offsets in that shard committed offsets (commit) or drops them
    /// (abort). Completes with None; NOT_COORDINATOR for a partition this coordinator does not
    /// have or cannot write; COORDINATOR_LOAD_IN_PROGRESS before the partitions are loaded;
    /// INVALID_PRODUCER_EPOCH when the partition refuses the marker's epoch.
    /// </summary>
    /// <param name="offsetsPartition">The partition of __consumer_offsets.</param>
    /// <param name="producerId">The transactional producer.</param>
    /// <param name="producerEpoch">The epoch the marker carries.</param>
    /// <param name="coordinatorEpoch">The transaction coordinator's epoch, written in the marker.</param>
    /// <param name="commit">COMMIT (true) or ABORT.</param>
    public Task<ErrorCode> CompleteTransactionAsync(int offsetsPartition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit) =>
        _runtime.CompleteTransactionAsync(offsetsPartition, producerId, producerEpoch, coordinatorEpoch, commit);

    /// <summary>
    /// OffsetFetch: the committed offsets asked for (null: all of the group's), -1 where none.
    /// Offsets of open transactions are not visible; with <paramref name="requireStable"/> (v7+)
    /// a partition that has one gets UNSTABLE_OFFSET_COMMIT.
    /// </summary>
    public Task<List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)>> FetchAsync(string groupId, IReadOnlyList<(string Topic, IReadOnlyList<int> Partitions)>? topics, bool requireStable = false) =>
        _runtime.ReadAsync(ShardOf(groupId), s => s.Fetch(groupId, topics, requireStable));

    /// <summary>ListGroups, optionally filtered by state names: every shard's groups.</summary>
    public async Task<List<(string GroupId, string ProtocolType, string State, string Type)>> ListAsync(IReadOnlyCollection<string> statesFilter)
    {
        var shards = await Task.WhenAll(Enumerable.Range(0, _partitions).Select(p => _runtime.ReadAsync(p, s => s.List(statesFilter)))).ConfigureAwait(false);
        return shards.SelectMany(s => s).ToList();
    }

    /// <summary>DescribeGroups: an unknown group is described as Dead with no members, as Kafka does.</summary>
    public Task<GroupDescription> DescribeAsync(string groupId) => _runtime.ReadAsync(ShardOf(groupId), s => s.Describe(groupId));

    /// <summary>DeleteGroups: only groups without members; their offsets and metadata get tombstones.</summary>
    public Task<ErrorCode> DeleteAsync(string groupId) => _runtime.WriteAsync(ShardOf(groupId), s => s.Delete(groupId));

    /// <summary>OffsetDelete: removes committed offsets of topics the group's members don't subscribe to.</summary>
    public Task<(ErrorCode Error, List<(string Topic, int Partition, ErrorCode Error)> Results)> DeleteOffsetsAsync(string groupId, IReadOnlyList<(string Topic, int Partition)> partitions) =>
        _runtime.WriteAsync(ShardOf(groupId), s => s.DeleteOffsets(groupId, partitions));

    /// <summary>Used by tests: the committed offset, or null.</summary>
    internal Task<CommittedOffset?> CommittedAsync(string groupId, string topic, int partition) =>
        _runtime.ReadAsync(ShardOf(groupId), s => s.Committed(groupId, topic, partition));

    /// <summary>Used by tests: whether an open transaction holds an offset for the partition.</summary>
    internal Task<bool> HasPendingAsync(string groupId, string topic, int partition) =>
        _runtime.ReadAsync(ShardOf(groupId), s => s.HasPendingTransactionalOffsets(groupId, topic, partition));

    /// <summary>Used by tests: the group's state, or null when there is no such group.</summary>
    internal Task<GroupState?> StateAsync(string groupId) => _runtime.ReadAsync(ShardOf(groupId), s => s.StateOf(groupId));

    /// <summary>Stops the shards' timers and waits for the operations in flight.</summary>
    public ValueTask DisposeAsync() => _runtime.DisposeAsync();
}
