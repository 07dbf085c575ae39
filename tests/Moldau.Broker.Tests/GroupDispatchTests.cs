using System.Buffers.Binary;
using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>
/// The classic group protocol through the dispatcher, as a consumer and an admin client drive it:
/// find the coordinator, join (with the member id round trip of KIP-394), sync, heartbeat, commit
/// and fetch offsets, describe, list, leave, delete offsets and groups.
/// </summary>
public sealed class GroupDispatchTests : IAsyncLifetime
{
    private const string Topic = "events";
    private BrokerHarness _broker = null!;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 2, ReplicationFactor = 1 }, new() { Name = "other", NumPartitions = 1, ReplicationFactor = 1 }],
            TimeoutMs = 1000,
        });
        Assert.All(created.Topics, t => Assert.Equal(0, t.ErrorCode));
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _broker.SendAsync<T>(key, version, request);

    /// <summary>A consumer protocol subscription (v0: topics, null user data) to <paramref name="topics"/>.</summary>
    private static byte[] Subscription(params string[] topics)
    {
        var bytes = new List<byte> { 0, 0 };
        bytes.AddRange(BigEndian(topics.Length));
        foreach (var t in topics)
        {
            bytes.AddRange([(byte)(t.Length >> 8), (byte)t.Length]);
            bytes.AddRange(Encoding.UTF8.GetBytes(t));
        }

        bytes.AddRange(BigEndian(-1));
        return [.. bytes];
    }

    private static byte[] BigEndian(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return b;
    }

    private static JoinGroupRequest Join(string group, string member, byte[]? subscription = null, int sessionTimeoutMs = 30000) => new()
    {
        GroupId = group,
        SessionTimeoutMs = sessionTimeoutMs,
        RebalanceTimeoutMs = 30000,
        MemberId = member,
        ProtocolType = "consumer",
        Protocols = [new() { Name = "range", Metadata = subscription ?? Subscription(Topic) }],
    };

    private Task<JoinGroupResponse> JoinAsync(short version, string group, string member, byte[]? subscription = null) =>
        Send<JoinGroupResponse>(ApiKey.JoinGroup, version, Join(group, member, subscription));

    /// <summary>A v4+ first join: MEMBER_ID_REQUIRED with the id to use, then the join with it.</summary>
    private async Task<JoinGroupResponse> JoinWithMemberIdAsync(short version, string group, byte[]? subscription = null)
    {
        var first = await JoinAsync(version, group, string.Empty, subscription);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        Assert.StartsWith("test-", first.MemberId); // the client id, then a unique suffix
        var joined = await JoinAsync(version, group, first.MemberId, subscription);
        Assert.Equal((short)0, joined.ErrorCode);
        Assert.Equal(first.MemberId, joined.MemberId);
        return joined;
    }

    private Task<SyncGroupResponse> SyncAsync(short version, string group, int generation, string member, params (string Member, byte[] Assignment)[] assignments) =>
        Send<SyncGroupResponse>(ApiKey.SyncGroup, version, new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = generation,
            MemberId = member,
            ProtocolType = "consumer",
            ProtocolName = "range",
            Assignments = [.. assignments.Select(a => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = a.Member, Assignment = a.Assignment })],
        });

    private async Task<short> HeartbeatAsync(short version, string group, int generation, string member) =>
        (await Send<HeartbeatResponse>(ApiKey.Heartbeat, version, new HeartbeatRequest { GroupId = group, GenerationId = generation, MemberId = member })).ErrorCode;

    private async Task<List<(string Topic, int Partition, short Error)>> CommitAsync(short version, string group, int generation, string member, params (string Topic, int Partition, long Offset)[] offsets)
    {
        var response = await Send<OffsetCommitResponse>(ApiKey.OffsetCommit, version, new OffsetCommitRequest
        {
            GroupId = group,
            GenerationIdOrMemberEpoch = generation,
            MemberId = member,
            RetentionTimeMs = -1,
            Topics = [.. offsets.GroupBy(o => o.Topic).Select(g => new OffsetCommitRequest.OffsetCommitRequestTopic
            {
                Name = g.Key,
                Partitions = [.. g.Select(o => new OffsetCommitRequest.OffsetCommitRequestPartition { PartitionIndex = o.Partition, CommittedOffset = o.Offset, CommittedLeaderEpoch = 0, CommittedMetadata = $"at {o.Offset}" })],
            })],
        });
        return [.. response.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.ErrorCode)))];
    }

    private async Task<DescribeGroupsResponse.DescribedGroup> DescribeAsync(short version, string group) =>
        Assert.Single((await Send<DescribeGroupsResponse>(ApiKey.DescribeGroups, version, new DescribeGroupsRequest { Groups = [group], IncludeAuthorizedOperations = true })).Groups);

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(6)]
    [Covers(ApiKey.FindCoordinator)]
    public async Task FindCoordinatorNamesThisNodeForEveryGroup(short version)
    {
        var response = await Send<FindCoordinatorResponse>(ApiKey.FindCoordinator, version, new FindCoordinatorRequest { Key = "g1", KeyType = 0, CoordinatorKeys = ["g1", "g2"] });
        if (version >= 4)
        {
            Assert.Equal(["g1", "g2"], response.Coordinators.Select(c => c.Key));
            Assert.All(response.Coordinators, c => Assert.Equal(((short)0, 1, "broker.test", 9092), (c.ErrorCode, c.NodeId, c.Host, c.Port)));
        }
        else
        {
            Assert.Equal(((short)0, 1, "broker.test", 9092), (response.ErrorCode, response.NodeId, response.Host, response.Port));
        }

        // Key type 1 (a transactional id) from v1: this node too.
        if (version >= 1)
        {
            var transaction = await Send<FindCoordinatorResponse>(ApiKey.FindCoordinator, version, new FindCoordinatorRequest { Key = "tx", KeyType = 1, CoordinatorKeys = ["tx"] });
            var (error, node) = version >= 4 ? (transaction.Coordinators.Single().ErrorCode, transaction.Coordinators.Single().NodeId) : (transaction.ErrorCode, transaction.NodeId);
            Assert.Equal(((short)0, 1), (error, node));
        }

        // An unknown key type: INVALID_REQUEST.
        var unknown = await Send<FindCoordinatorResponse>(ApiKey.FindCoordinator, version, new FindCoordinatorRequest { Key = "x", KeyType = 2, CoordinatorKeys = ["x"] });
        if (version >= 1)
        {
            Assert.Equal((short)ErrorCode.InvalidRequest, version >= 4 ? unknown.Coordinators.Single().ErrorCode : unknown.ErrorCode);
        }
    }

    [Fact]
    [Covers(ApiKey.JoinGroup)]
    [Covers(ApiKey.SyncGroup)]
    [Covers(ApiKey.Heartbeat)]
    [Covers(ApiKey.OffsetCommit)]
    [Covers(ApiKey.OffsetFetch)]
    [Covers(ApiKey.DescribeGroups)]
    [Covers(ApiKey.ListGroups)]
    [Covers(ApiKey.LeaveGroup)]
    [Covers(ApiKey.OffsetDelete)]
    [Covers(ApiKey.DeleteGroups)]
    public async Task AConsumerGroupLifeAtTheHighestVersions()
    {
        const string group = "flexible";
        var joined = await JoinWithMemberIdAsync(9, group);
        var member = joined.MemberId;
        Assert.Equal((1, member, "consumer", "range"), (joined.GenerationId, joined.Leader, joined.ProtocolType, joined.ProtocolName));
        Assert.False(joined.SkipAssignment);
        var self = Assert.Single(joined.Members); // the leader gets every member's subscription
        Assert.Equal(member, self.MemberId);
        Assert.Equal(Subscription(Topic), self.Metadata);

        var assignment = new byte[] { 0, 0, 0, 0, 0, 1, 9 };
        var synced = await SyncAsync(5, group, 1, member, (member, assignment));
        Assert.Equal(((short)0, "consumer", "range"), (synced.ErrorCode, synced.ProtocolType, synced.ProtocolName));
        Assert.Equal(assignment, synced.Assignment);
        Assert.Equal((short)0, await HeartbeatAsync(4, group, 1, member));

        Assert.Equal([(Topic, 0, (short)0), (Topic, 1, (short)0)], await CommitAsync(9, group, 1, member, (Topic, 0, 42), (Topic, 1, 7)));
        var fetched = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest
        {
            Groups = [new() { GroupId = group, MemberId = null, MemberEpoch = -1, Topics = [new() { Name = Topic, PartitionIndexes = [0, 1] }, new() { Name = "other", PartitionIndexes = [0] }] }],
        });
        var fetchedGroup = Assert.Single(fetched.Groups);
        Assert.Equal((group, (short)0), (fetchedGroup.GroupId, fetchedGroup.ErrorCode));
        Assert.Equal(
            [(Topic, 0, 42L, 0, "at 42"), (Topic, 1, 7L, 0, "at 7"), ("other", 0, -1L, -1, "")],
            fetchedGroup.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.Metadata ?? string.Empty))));

        var described = await DescribeAsync(5, group);
        Assert.Equal(((short)0, "Stable", "consumer", "range"), (described.ErrorCode, described.GroupState, described.ProtocolType, described.ProtocolData));
        var describedMember = Assert.Single(described.Members);
        Assert.Equal((member, "test"), (describedMember.MemberId, describedMember.ClientId));
        Assert.Equal(assignment, describedMember.MemberAssignment);
        Assert.Equal(Subscription(Topic), describedMember.MemberMetadata);
        Assert.NotEqual(int.MinValue, described.AuthorizedOperations);

        var listed = await Send<ListGroupsResponse>(ApiKey.ListGroups, 5, new ListGroupsRequest { StatesFilter = ["Stable"], TypesFilter = ["classic"] });
        Assert.Equal((short)0, listed.ErrorCode);
        var listedGroup = Assert.Single(listed.Groups);
        Assert.Equal((group, "consumer", "Stable", "classic"), (listedGroup.GroupId, listedGroup.ProtocolType, listedGroup.GroupState, listedGroup.GroupType));
        Assert.Empty((await Send<ListGroupsResponse>(ApiKey.ListGroups, 5, new ListGroupsRequest { StatesFilter = ["Empty"] })).Groups);
        Assert.Empty((await Send<ListGroupsResponse>(ApiKey.ListGroups, 5, new ListGroupsRequest { TypesFilter = ["consumer"] })).Groups);

        // Offsets of a topic the group subscribes to can't be deleted while it has members.
        var subscribed = await Send<OffsetDeleteResponse>(ApiKey.OffsetDelete, 0, new OffsetDeleteRequest { GroupId = group, Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0 }] }] });
        Assert.Equal((short)0, subscribed.ErrorCode);
        Assert.Equal((short)ErrorCode.GroupSubscribedToTopic, subscribed.Topics.Single().Partitions.Single().ErrorCode);
        Assert.Equal((short)ErrorCode.NonEmptyGroup, (await Send<DeleteGroupsResponse>(ApiKey.DeleteGroups, 2, new DeleteGroupsRequest { GroupsNames = [group] })).Results.Single().ErrorCode);

        var left = await Send<LeaveGroupResponse>(ApiKey.LeaveGroup, 5, new LeaveGroupRequest { GroupId = group, Members = [new() { MemberId = member, Reason = "done" }, new() { MemberId = "stranger" }] });
        Assert.Equal((short)0, left.ErrorCode);
        Assert.Equal([(member, (short)0), ("stranger", (short)ErrorCode.UnknownMemberId)], left.Members.Select(m => (m.MemberId, m.ErrorCode)));
        var empty = await DescribeAsync(5, group);
        Assert.Equal(("Empty", 0), (empty.GroupState, empty.Members.Count));

        var deletedOffsets = await Send<OffsetDeleteResponse>(ApiKey.OffsetDelete, 0, new OffsetDeleteRequest { GroupId = group, Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0 }] }] });
        Assert.Equal(((short)0, (short)0), (deletedOffsets.ErrorCode, deletedOffsets.Topics.Single().Partitions.Single().ErrorCode));
        var afterDelete = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest { Groups = [new() { GroupId = group, MemberEpoch = -1, Topics = null }] });
        Assert.Equal([(Topic, 1, 7L)], afterDelete.Groups.Single().Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.CommittedOffset))));

        var deleted = await Send<DeleteGroupsResponse>(ApiKey.DeleteGroups, 2, new DeleteGroupsRequest { GroupsNames = [group, "never-was"] });
        Assert.Equal([(group, (short)0), ("never-was", (short)ErrorCode.GroupIdNotFound)], deleted.Results.Select(r => (r.GroupId, r.ErrorCode)));
        var dead = await DescribeAsync(5, group);
        Assert.Equal(((short)0, "Dead", 0), (dead.ErrorCode, dead.GroupState, dead.Members.Count));
        Assert.DoesNotContain((await Send<ListGroupsResponse>(ApiKey.ListGroups, 5, new ListGroupsRequest())).Groups, g => g.GroupId == group);
        var gone = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest { Groups = [new() { GroupId = group, MemberEpoch = -1, Topics = [new() { Name = Topic, PartitionIndexes = [1] }] }] });
        Assert.Equal(-1, gone.Groups.Single().Topics.Single().Partitions.Single().CommittedOffset);
        Assert.Equal((short)ErrorCode.GroupIdNotFound, (await Send<OffsetDeleteResponse>(ApiKey.OffsetDelete, 0, new OffsetDeleteRequest { GroupId = group, Topics = [] })).ErrorCode);
    }

    [Fact]
    [Covers(ApiKey.JoinGroup)]
    [Covers(ApiKey.SyncGroup)]
    [Covers(ApiKey.Heartbeat)]
    [Covers(ApiKey.OffsetCommit)]
    [Covers(ApiKey.OffsetFetch)]
    [Covers(ApiKey.DescribeGroups)]
    [Covers(ApiKey.ListGroups)]
    [Covers(ApiKey.LeaveGroup)]
    [Covers(ApiKey.DeleteGroups)]
    public async Task AConsumerGroupLifeAtTheLowestVersions()
    {
        const string group = "classic";

        // v0-v3: no member id round trip; the only member's join completes at once.
        var joined = await JoinAsync(0, group, string.Empty);
        Assert.Equal((short)0, joined.ErrorCode);
        Assert.Equal((1, joined.MemberId, "range"), (joined.GenerationId, joined.Leader, joined.ProtocolName));
        var member = joined.MemberId;

        var synced = await SyncAsync(0, group, 1, member, (member, [1, 2, 3]));
        Assert.Equal((short)0, synced.ErrorCode);
        Assert.Equal([1, 2, 3], synced.Assignment);
        Assert.Equal((short)0, await HeartbeatAsync(0, group, 1, member));

        // v1: a commit by the member at its generation.
        Assert.Equal([(Topic, 0, (short)0)], await CommitAsync(1, group, 1, member, (Topic, 0, 5)));
        var fetched = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 1, new OffsetFetchRequest { GroupId = group, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] });
        var partition = fetched.Topics.Single().Partitions.Single();
        Assert.Equal(((short)0, 5L, "at 5"), (partition.ErrorCode, partition.CommittedOffset, partition.Metadata));

        var described = await DescribeAsync(0, group);
        Assert.Equal(("Stable", "range", member), (described.GroupState, described.ProtocolData, described.Members.Single().MemberId));
        Assert.Contains((await Send<ListGroupsResponse>(ApiKey.ListGroups, 0, new ListGroupsRequest())).Groups, g => g.GroupId == group && g.ProtocolType == "consumer");

        var left = await Send<LeaveGroupResponse>(ApiKey.LeaveGroup, 0, new LeaveGroupRequest { GroupId = group, MemberId = member });
        Assert.Equal((short)0, left.ErrorCode);
        var again = await Send<LeaveGroupResponse>(ApiKey.LeaveGroup, 0, new LeaveGroupRequest { GroupId = group, MemberId = member });
        Assert.Equal((short)ErrorCode.UnknownMemberId, again.ErrorCode);

        // v0: a simple commit (no generation, no member) to a group without members.
        Assert.Equal([(Topic, 1, (short)0)], await CommitAsync(0, "simple", -1, string.Empty, (Topic, 1, 11)));
        var simple = await Send<OffsetFetchResponse>(ApiKey.OffsetFetch, 0, new OffsetFetchRequest { GroupId = "simple", Topics = [new() { Name = Topic, PartitionIndexes = [1] }] });
        Assert.Equal(11, simple.Topics.Single().Partitions.Single().CommittedOffset);

        var deleted = await Send<DeleteGroupsResponse>(ApiKey.DeleteGroups, 0, new DeleteGroupsRequest { GroupsNames = [group, "simple"] });
        Assert.All(deleted.Results, r => Assert.Equal((short)0, r.ErrorCode));
    }

    [Fact]
    [Covers(ApiKey.JoinGroup)]
    [Covers(ApiKey.Heartbeat)]
    [Covers(ApiKey.SyncGroup)]
    public async Task ASecondMemberRebalancesTheGroup()
    {
        const string group = "pair";
        var a = await JoinWithMemberIdAsync(5, group);
        Assert.Equal((short)0, (await SyncAsync(5, group, 1, a.MemberId, (a.MemberId, [1]))).ErrorCode);

        // B's join waits until A rejoins; meanwhile A's heartbeat tells it to.
        var bFirst = await JoinAsync(5, group, string.Empty);
        Assert.Equal((short)ErrorCode.MemberIdRequired, bFirst.ErrorCode);
        var bJoin = JoinAsync(5, group, bFirst.MemberId);
        Assert.Equal((short)ErrorCode.RebalanceInProgress, await HeartbeatAsync(3, group, 1, a.MemberId));
        Assert.False(bJoin.IsCompleted);

        // Kafka takes a commit at the current generation while the group prepares a rebalance
        // (a consumer commits as its partitions are revoked).
        Assert.Equal((short)0, (await CommitAsync(5, group, 1, a.MemberId, (Topic, 0, 1))).Single().Error);

        var aRejoin = await JoinAsync(5, group, a.MemberId);
        var b = await bJoin.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(((short)0, 2, a.MemberId), (aRejoin.ErrorCode, aRejoin.GenerationId, aRejoin.Leader));
        Assert.Equal(((short)0, 2, a.MemberId), (b.ErrorCode, b.GenerationId, b.Leader));
        Assert.Equal(new[] { a.MemberId, b.MemberId }.Order(StringComparer.Ordinal), aRejoin.Members.Select(m => m.MemberId).Order(StringComparer.Ordinal));
        Assert.Empty(b.Members); // only the leader gets the subscriptions

        // The follower's sync waits for the leader's assignment.
        var bSync = SyncAsync(5, group, 2, b.MemberId);
        Assert.False(bSync.IsCompleted);
        var aSync = await SyncAsync(5, group, 2, a.MemberId, (a.MemberId, [1]), (b.MemberId, [2]));
        Assert.Equal(new byte[] { 1 }, aSync.Assignment);
        Assert.Equal(new byte[] { 2 }, (await bSync.WaitAsync(TimeSpan.FromSeconds(10))).Assignment);

        // The old generation is gone.
        Assert.Equal((short)ErrorCode.IllegalGeneration, await HeartbeatAsync(4, group, 1, a.MemberId));
        Assert.Equal((short)0, await HeartbeatAsync(4, group, 2, b.MemberId));
    }

    [Fact]
    [Covers(ApiKey.JoinGroup)]
    [Covers(ApiKey.SyncGroup)]
    [Covers(ApiKey.Heartbeat)]
    [Covers(ApiKey.OffsetCommit)]
    [Covers(ApiKey.LeaveGroup)]
    public async Task GroupErrorsAreTheOnesKafkaClientsActOn()
    {
        Assert.Equal((short)ErrorCode.InvalidGroupId, (await JoinAsync(9, string.Empty, string.Empty)).ErrorCode);
        var shortSession = await Send<JoinGroupResponse>(ApiKey.JoinGroup, 9, Join("g", string.Empty, sessionTimeoutMs: 100));
        Assert.Equal((short)ErrorCode.InvalidSessionTimeout, shortSession.ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await JoinAsync(9, "nobody-here", "made-up")).ErrorCode);

        var joined = await JoinWithMemberIdAsync(9, "g");
        var member = joined.MemberId;
        Assert.Equal((short)ErrorCode.IllegalGeneration, (await SyncAsync(5, "g", 7, member, (member, []))).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownMemberId, (await SyncAsync(5, "g", 1, "made-up")).ErrorCode);
        Assert.Equal((short)0, (await SyncAsync(5, "g", 1, member, (member, []))).ErrorCode);

        Assert.Equal((short)ErrorCode.UnknownMemberId, await HeartbeatAsync(4, "g", 1, "made-up"));
        Assert.Equal((short)ErrorCode.UnknownMemberId, await HeartbeatAsync(4, "no-such-group", 1, member));
        Assert.Equal((short)ErrorCode.IllegalGeneration, await HeartbeatAsync(4, "g", 2, member));

        // A different protocol type than the group's members.
        var other = await Send<JoinGroupResponse>(ApiKey.JoinGroup, 3, new JoinGroupRequest
        {
            GroupId = "g",
            SessionTimeoutMs = 30000,
            RebalanceTimeoutMs = 30000,
            MemberId = string.Empty,
            ProtocolType = "connect",
            Protocols = [new() { Name = "sessioned", Metadata = [] }],
        });
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, other.ErrorCode);

        Assert.Equal([(Topic, 0, (short)ErrorCode.IllegalGeneration)], await CommitAsync(9, "g", 5, member, (Topic, 0, 1)));
        Assert.Equal([(Topic, 0, (short)ErrorCode.UnknownMemberId)], await CommitAsync(9, "g", 1, "made-up", (Topic, 0, 1)));
        Assert.Equal([("missing", 0, (short)ErrorCode.UnknownTopicOrPartition), (Topic, 0, (short)0)], await CommitAsync(9, "g", 1, member, ("missing", 0, 1), (Topic, 0, 1)));

        var unknownLeave = await Send<LeaveGroupResponse>(ApiKey.LeaveGroup, 5, new LeaveGroupRequest { GroupId = "no-such-group", Members = [new() { MemberId = "x" }] });
        Assert.Equal(((short)0, (short)ErrorCode.UnknownMemberId), (unknownLeave.ErrorCode, unknownLeave.Members.Single().ErrorCode));
    }
}
