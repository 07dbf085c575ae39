using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>
/// TxnOffsetCommit through the dispatcher at every version, and what OffsetFetch answers before
/// and after the transaction's marker reaches __consumer_offsets (driven here through
/// <see cref="GroupCoordinator.CompleteTransactionAsync"/>, as the transaction coordinator's
/// WriteTxnMarkers does).
/// </summary>
public sealed class TxnOffsetCommitDispatchTests : IAsyncLifetime
{
    private const string Topic = "events";
    private BrokerHarness _broker = null!;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        var created = await _broker.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 2, ReplicationFactor = 1 }],
            TimeoutMs = 1000,
        });
        Assert.All(created.Topics, t => Assert.Equal(0, t.ErrorCode));

        // These producers are unknown to the transaction coordinator: the tests are about the
        // group coordinator's part, so the KIP-890 verification is off (its own test sets one).
        _broker.Broker.GroupCoordinator.TransactionVerifier = null;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private static TxnOffsetCommitRequest Commit(string group, long producerId, long offset, int generation = -1, string member = "", string topic = Topic, int partition = 0) => new()
    {
        TransactionalId = "tx",
        GroupId = group,
        ProducerId = producerId,
        ProducerEpoch = 2,
        GenerationId = generation,
        MemberId = member,
        Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, CommittedOffset = offset, CommittedLeaderEpoch = 5, CommittedMetadata = "in txn" }] }],
    };

    private async Task<List<(string Topic, int Partition, short Error)>> TxnCommitAsync(short version, TxnOffsetCommitRequest request) =>
        [.. (await _broker.SendAsync<TxnOffsetCommitResponse>(ApiKey.TxnOffsetCommit, version, request)).Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.ErrorCode)))];

    private async Task<(long Offset, short Error)> FetchAsync(short version, string group, bool requireStable)
    {
        var response = await _broker.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, version, new OffsetFetchRequest
        {
            GroupId = group,
            Topics = [new() { Name = Topic, PartitionIndexes = [0] }],
            Groups = [new() { GroupId = group, MemberEpoch = -1, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] }],
            RequireStable = requireStable,
        });
        if (version >= 8)
        {
            var p8 = response.Groups.Single().Topics.Single().Partitions.Single();
            return (p8.CommittedOffset, p8.ErrorCode);
        }

        var p = response.Topics.Single().Partitions.Single();
        return (p.CommittedOffset, p.ErrorCode);
    }

    private Task<ErrorCode> EndAsync(string group, long producerId, bool commit) =>
        _broker.Broker.GroupCoordinator.CompleteTransactionAsync(OffsetsTopic.PartitionFor(group, 1), producerId, 2, 0, commit);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [Covers(ApiKey.TxnOffsetCommit)]
    [Covers(ApiKey.OffsetFetch)]
    public async Task Offsets_committed_in_a_transaction_are_fetched_only_after_the_commit_marker(short version)
    {
        var group = $"txn-v{version}";
        var plain = await _broker.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 2, new OffsetCommitRequest
        {
            GroupId = group,
            GenerationIdOrMemberEpoch = -1,
            MemberId = string.Empty,
            RetentionTimeMs = -1,
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 10, CommittedMetadata = "plain" }] }],
        });
        Assert.Equal(0, plain.Topics.Single().Partitions.Single().ErrorCode);

        Assert.Equal([(Topic, 0, (short)0)], await TxnCommitAsync(version, Commit(group, 7000 + version, 42)));

        Assert.Equal((10L, (short)0), await FetchAsync(6, group, requireStable: false));
        Assert.Equal((10L, (short)0), await FetchAsync(7, group, requireStable: false));
        Assert.Equal((-1L, (short)ErrorCode.UnstableOffsetCommit), await FetchAsync(7, group, requireStable: true));
        Assert.Equal((-1L, (short)ErrorCode.UnstableOffsetCommit), await FetchAsync(9, group, requireStable: true));

        Assert.Equal(ErrorCode.None, await EndAsync(group, 7000 + version, commit: true));

        Assert.Equal((42L, (short)0), await FetchAsync(7, group, requireStable: true));
        Assert.Equal((42L, (short)0), await FetchAsync(9, group, requireStable: true));
        var all = await _broker.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest { Groups = [new() { GroupId = group, MemberEpoch = -1, Topics = null }] });
        var partition = all.Groups.Single().Topics.Single().Partitions.Single();
        Assert.Equal((42L, version >= 2 ? 5 : -1, "in txn"), (partition.CommittedOffset, partition.CommittedLeaderEpoch, partition.Metadata));
    }

    [Fact]
    [Covers(ApiKey.TxnOffsetCommit)]
    public async Task An_aborted_transaction_leaves_the_last_committed_offset()
    {
        Assert.Equal([(Topic, 0, (short)0)], await TxnCommitAsync(4, Commit("aborted", 8000, 99)));
        Assert.Equal(ErrorCode.None, await EndAsync("aborted", 8000, commit: false));

        Assert.Equal((-1L, (short)0), await FetchAsync(9, "aborted", requireStable: true));
    }

    [Fact]
    [Covers(ApiKey.TxnOffsetCommit)]
    public async Task Group_metadata_and_partitions_are_checked_per_partition()
    {
        // KIP-447 (v3+): a generation for a group that does not exist.
        Assert.Equal([(Topic, 0, (short)ErrorCode.IllegalGeneration)], await TxnCommitAsync(3, Commit("nobody", 9000, 1, generation: 4, member: "m-1")));

        // An unknown topic or partition fails alone.
        var mixed = Commit("mixed", 9001, 1);
        mixed.Topics.Add(new() { Name = "missing", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 3 }] });
        mixed.Topics[0].Partitions.Add(new() { PartitionIndex = 9, CommittedOffset = 3 });
        Assert.Equal(
            [(Topic, 0, (short)0), (Topic, 9, (short)ErrorCode.UnknownTopicOrPartition), ("missing", 0, (short)ErrorCode.UnknownTopicOrPartition)],
            (await TxnCommitAsync(4, mixed)).Order());

        Assert.Equal([(Topic, 0, (short)ErrorCode.InvalidGroupId)], await TxnCommitAsync(4, Commit(string.Empty, 9002, 1)));
    }

    [Fact]
    [Covers(ApiKey.TxnOffsetCommit)]
    public async Task A_partition_not_in_the_transaction_is_TRANSACTION_ABORTABLE_from_v4_and_INVALID_TXN_STATE_before()
    {
        // What the transaction coordinator's verify-only AddPartitionsToTxn answers (KIP-890).
        _broker.Broker.GroupCoordinator.TransactionVerifier = (_, _, _, _) => Task.FromResult(ErrorCode.TransactionAbortable);

        Assert.Equal([(Topic, 0, (short)ErrorCode.TransactionAbortable)], await TxnCommitAsync(4, Commit("late", 9100, 1)));
        Assert.Equal([(Topic, 0, (short)ErrorCode.InvalidTxnState)], await TxnCommitAsync(3, Commit("late", 9100, 1)));
        Assert.Equal((-1L, (short)0), await FetchAsync(9, "late", requireStable: true));
    }
}
