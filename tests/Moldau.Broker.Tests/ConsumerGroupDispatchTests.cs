using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>
/// The consumer group protocol (KIP-848) through the dispatcher, as librdkafka 2.x drives it:
/// ConsumerGroupHeartbeat v1 with a client-made member id, the assignment by topic id, commits
/// and fetches with the member epoch, ConsumerGroupDescribe, ListGroups by type, leave and delete.
/// </summary>
public sealed class ConsumerGroupDispatchTests : IAsyncLifetime
{
    private const string Topic = "events";
    private BrokerHarness _broker = null!;
    private Uuid _topicId;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 3, ReplicationFactor = 1 }],
            TimeoutMs = 1000,
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
        _topicId = created.Topics.Single().TopicId;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _broker.SendAsync<T>(key, version, request);

    private Task<ConsumerGroupHeartbeatResponse> HeartbeatAsync(string group, string member, int epoch, List<string>? topics = null, List<ConsumerGroupHeartbeatRequest.TopicPartitionsData>? owned = null) =>
        Send<ConsumerGroupHeartbeatResponse>(ApiKey.ConsumerGroupHeartbeat, 1, new ConsumerGroupHeartbeatRequest
        {
            GroupId = group,
            MemberId = member,
            MemberEpoch = epoch,
            RebalanceTimeoutMs = epoch == 0 ? 30_000 : -1,
            SubscribedTopicNames = topics,
            ServerAssignor = epoch == 0 ? "range" : null,
            TopicPartitions = owned,
        });

    [Fact]
    [Covers(ApiKey.ConsumerGroupHeartbeat)]
    [Covers(ApiKey.ConsumerGroupDescribe)]
    public async Task AConsumerProtocolGroupLife()
    {
        const string group = "kip848";
        var joined = await HeartbeatAsync(group, "m1", 0, [Topic], []);
        Assert.Equal((0, "m1", 1, 5000), (joined.ErrorCode, joined.MemberId, joined.MemberEpoch, joined.HeartbeatIntervalMs));
        var assigned = Assert.Single(joined.Assignment!.TopicPartitions);
        Assert.Equal(_topicId, assigned.TopicId);
        Assert.Equal([0, 1, 2], assigned.Partitions);

        // A heartbeat with an epoch ahead of the coordinator's is fenced.
        Assert.Equal((short)ErrorCode.FencedMemberEpoch, (await HeartbeatAsync(group, "m1", 7)).ErrorCode);

        // Commits and fetches carry the member epoch (OffsetCommit v9, OffsetFetch v9).
        var commit = await Send<OffsetCommitResponse>(ApiKey.OffsetCommit, 9, new OffsetCommitRequest
        {
            GroupId = group,
            GenerationIdOrMemberEpoch = 1,
            MemberId = "m1",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 3, CommittedLeaderEpoch = -1 }] }],
        });
        Assert.Equal(0, commit.Topics.Single().Partitions.Single().ErrorCode);
        var stale = await Send<OffsetCommitResponse>(ApiKey.OffsetCommit, 9, new OffsetCommitRequest
        {
            GroupId = group,
            GenerationIdOrMemberEpoch = 0,
            MemberId = "m1",
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 4, CommittedLeaderEpoch = -1 }] }],
        });
        Assert.Equal((short)ErrorCode.StaleMemberEpoch, stale.Topics.Single().Partitions.Single().ErrorCode);
        var fetched = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest { Groups = [new() { GroupId = group, MemberId = "m1", MemberEpoch = 1, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] }] });
        Assert.Equal(3, fetched.Groups.Single().Topics.Single().Partitions.Single().CommittedOffset);
        var staleFetch = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest { Groups = [new() { GroupId = group, MemberId = "m1", MemberEpoch = 5, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] }] });
        Assert.Equal((short)ErrorCode.StaleMemberEpoch, staleFetch.Groups.Single().ErrorCode);

        // A second member: the first gives up partitions before the second gets them.
        var second = await HeartbeatAsync(group, "m2", 0, [Topic], []);
        Assert.Equal((2, 0), (second.MemberEpoch, second.Assignment!.TopicPartitions.Sum(t => t.Partitions.Count)));
        var revoking = await HeartbeatAsync(group, "m1", 1, owned: [new() { TopicId = _topicId, Partitions = [0, 1, 2] }]);
        Assert.Equal(1, revoking.MemberEpoch);
        Assert.Equal([0, 1], revoking.Assignment!.TopicPartitions.Single().Partitions);
        var revoked = await HeartbeatAsync(group, "m1", 1, owned: [new() { TopicId = _topicId, Partitions = [0, 1] }]);
        Assert.Equal(2, revoked.MemberEpoch);
        var got = await HeartbeatAsync(group, "m2", 2, owned: []);
        Assert.Equal([2], got.Assignment!.TopicPartitions.Single().Partitions);

        var described = (await Send<ConsumerGroupDescribeResponse>(ApiKey.ConsumerGroupDescribe, 0, new ConsumerGroupDescribeRequest { GroupIds = [group, "nope"] })).Groups;
        Assert.Equal((0, "Stable", 2, 2, "range"), (described[0].ErrorCode, described[0].GroupState, described[0].GroupEpoch, described[0].AssignmentEpoch, described[0].AssignorName));
        Assert.Equal(Topic, described[0].Members.Single(m => m.MemberId == "m2").Assignment.TopicPartitions.Single().TopicName);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, described[1].ErrorCode);

        var listed = await Send<ListGroupsResponse>(ApiKey.ListGroups, 5, new ListGroupsRequest { TypesFilter = ["consumer"] });
        Assert.Equal(("consumer", "Stable", "consumer"), (listed.Groups.Single().GroupType, listed.Groups.Single().GroupState, listed.Groups.Single().ProtocolType));
        Assert.Empty((await Send<ListGroupsResponse>(ApiKey.ListGroups, 5, new ListGroupsRequest { TypesFilter = ["classic"] })).Groups);

        // A classic member cannot join it.
        var classic = await Send<JoinGroupResponse>(ApiKey.JoinGroup, 9, new JoinGroupRequest { GroupId = group, MemberId = string.Empty, ProtocolType = "consumer", SessionTimeoutMs = 10_000, RebalanceTimeoutMs = 10_000, Protocols = [new() { Name = "range", Metadata = [0, 0, 0, 0, 0, 0] }] });
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, classic.ErrorCode);

        Assert.Equal(-1, (await HeartbeatAsync(group, "m1", -1)).MemberEpoch);
        Assert.Equal(-1, (await HeartbeatAsync(group, "m2", -1)).MemberEpoch);
        var deleted = await Send<DeleteGroupsResponse>(ApiKey.DeleteGroups, 2, new DeleteGroupsRequest { GroupsNames = [group] });
        Assert.Equal(0, deleted.Results.Single().ErrorCode);
    }
}
