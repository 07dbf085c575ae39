using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator;

/// <summary>
/// Offsets committed inside a transaction (TxnOffsetCommit), as Kafka's OffsetMetadataManager
/// keeps them: the records go to __consumer_offsets in a transactional batch of the producer, and
/// their replay puts them aside, per producer id, where OffsetFetch does not see them. The
/// transaction's marker, written to this partition by the transaction coordinator's
/// WriteTxnMarkers (<see cref="GroupCoordinator.CompleteTransactionAsync"/>), makes them committed
/// offsets (COMMIT) or drops them (ABORT). A load replays batches and markers in log order, so an
/// open transaction is open again after a restart.
/// </summary>
internal sealed partial class GroupCoordinatorShard
{
    // producer id -> its pending offsets, by (group, topic, partition).
    private readonly Dictionary<long, Dictionary<(string Group, string Topic, int Partition), CommittedOffset>> _pendingByProducer = [];

    // group -> the producer ids with pending offsets in it (Kafka's openTransactionsByGroup).
    private readonly Dictionary<string, HashSet<long>> _openTransactionsByGroup = new(StringComparer.Ordinal);

    /// <summary>How many producers have offsets pending in this shard.</summary>
    public int OpenTransactionCount => _pendingByProducer.Count;

    /// <summary>
    /// TxnOffsetCommit: checks the group as Kafka's <c>validateTransactionalOffsetCommit</c> does
    /// (KIP-447: generation, member and instance id when the request carries them; a group that
    /// does not exist is accepted with generation -1 only) and writes the offsets in a
    /// transactional batch of <paramref name="producerId"/>. They stay pending until the
    /// transaction's marker. A failed write fails every partition that was accepted.
    /// </summary>
    public CoordinatorResult<List<(string Topic, int Partition, ErrorCode Error)>> CommitTransactional(string groupId, long producerId, short producerEpoch, int generationId, string memberId, string? groupInstanceId, IReadOnlyList<(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata)> offsets)
    {
        var (results, records) = OffsetCommitRecords(groupId, CheckTransactionalCommitter(groupId, generationId, memberId, groupInstanceId), offsets);
        return records.Count == 0
            ? CoordinatorResult<List<(string, int, ErrorCode)>>.Of(results)
            : CoordinatorResult<List<(string, int, ErrorCode)>>.Transactional(producerId, producerEpoch, records, results, failed => FailAccepted(results, failed));
    }

    /// <summary>Kafka's ClassicGroup.validateOffsetCommit for a transactional commit, in its order.</summary>
    private ErrorCode CheckTransactionalCommitter(string groupId, int generationId, string memberId, string? groupInstanceId)
    {
        if (string.IsNullOrEmpty(groupId))
        {
            return ErrorCode.InvalidGroupId;
        }

        if (!_groups.TryGetValue(groupId, out var g) || g.State == GroupState.Dead)
        {
            // Generation -1: a producer whose consumer does not use group management (v0-v2 always).
            return generationId < 0 ? ErrorCode.None : ErrorCode.IllegalGeneration;
        }

        if (g.Consumer is { } cg)
        {
            // A consumer-protocol group (KIP-848): a producer without group metadata commits as
            // before; else the member and its epoch are checked, a stale epoch answered as
            // ILLEGAL_GENERATION, the error TxnOffsetCommit clients know.
            if (generationId < 0 && memberId.Length == 0 && groupInstanceId is null)
            {
                return ErrorCode.None;
            }

            var checkedMember = CheckConsumerCommitter(cg, generationId, memberId);
            return checkedMember == ErrorCode.StaleMemberEpoch ? ErrorCode.IllegalGeneration : checkedMember;
        }

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

        // Unlike a plain commit, neither a missing member id (older versions carry none) nor a
        // rebalance in progress refuses a transactional commit: the group's state is not enforced.
        return ErrorCode.None;
    }

    /// <summary>Whether an open transaction holds an offset for the partition (Kafka's hasPendingTransactionalOffsets).</summary>
    internal bool HasPendingTransactionalOffsets(string groupId, string topic, int partition)
    {
        if (!_openTransactionsByGroup.TryGetValue(groupId, out var producers))
        {
            return false;
        }

        foreach (var producerId in producers)
        {
            if (_pendingByProducer.TryGetValue(producerId, out var pending) && pending.ContainsKey((groupId, topic, partition)))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Whether <paramref name="groupId"/> has an open transaction with offsets in it.</summary>
    private bool HasOpenTransactions(string groupId) => _openTransactionsByGroup.ContainsKey(groupId);

    /// <summary>The partitions an open transaction holds pending offsets for in <paramref name="groupId"/>.</summary>
    private IEnumerable<(string Topic, int Partition)> PendingPartitions(string groupId)
    {
        if (!_openTransactionsByGroup.TryGetValue(groupId, out var producers))
        {
            return [];
        }

        return producers
            .Where(_pendingByProducer.ContainsKey)
            .SelectMany(p => _pendingByProducer[p].Keys)
            .Where(k => k.Group == groupId)
            .Select(k => (k.Topic, k.Partition))
            .Distinct();
    }

    private void AddPending(long producerId, string groupId, string topic, int partition, CommittedOffset offset)
    {
        if (!_pendingByProducer.TryGetValue(producerId, out var pending))
        {
            _pendingByProducer[producerId] = pending = [];
        }

        pending[(groupId, topic, partition)] = offset;
        if (!_openTransactionsByGroup.TryGetValue(groupId, out var producers))
        {
            _openTransactionsByGroup[groupId] = producers = [];
        }

        producers.Add(producerId);
    }

    /// <summary>An offset tombstone: the partition's pending offsets go too, in every open transaction of the group.</summary>
    private void RemovePending(string groupId, string topic, int partition)
    {
        if (!_openTransactionsByGroup.TryGetValue(groupId, out var producers))
        {
            return;
        }

        foreach (var producerId in producers)
        {
            if (_pendingByProducer.TryGetValue(producerId, out var pending))
            {
                pending.Remove((groupId, topic, partition));
            }
        }
    }

    /// <summary>
    /// A transaction's marker (Kafka's replayEndTransactionMarker): the producer's pending offsets
    /// leave the pending store; on COMMIT each becomes the committed offset unless a commit whose
    /// record is newer in the log is already there (a plain commit after the transactional one).
    /// A marker of a producer with nothing pending here changes nothing.
    /// </summary>
    public void ReplayEndTransaction(long producerId, short producerEpoch, bool commit)
    {
        if (!_pendingByProducer.Remove(producerId, out var pending))
        {
            return;
        }

        foreach (var groupId in pending.Keys.Select(k => k.Group).Distinct(StringComparer.Ordinal))
        {
            if (_openTransactionsByGroup.TryGetValue(groupId, out var producers) && producers.Remove(producerId) && producers.Count == 0)
            {
                _openTransactionsByGroup.Remove(groupId);
            }
        }

        if (!commit)
        {
            return;
        }

        foreach (var ((groupId, topic, partition), offset) in pending)
        {
            var g = GetOrCreate(groupId);
            if (!g.Offsets.TryGetValue((topic, partition), out var existing) || offset.RecordOffset > existing.RecordOffset)
            {
                g.Offsets[(topic, partition)] = offset;
            }
        }
    }
}
