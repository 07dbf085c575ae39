using Moldau.Protocol;

namespace Moldau.Coordinator.Tests;

/// <summary>KIP-848 groups on the coordinator with a fake clock: epochs, incremental revocation, timeouts, records replayed at load.</summary>
public sealed class ConsumerGroupProtocolTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private sealed class Topics : IGroupTopics
    {
        public Dictionary<string, ConsumerTopic> ByName { get; } = new(StringComparer.Ordinal);

        public ConsumerTopic? Find(string name) => ByName.GetValueOrDefault(name);

        public IEnumerable<ConsumerTopic> All => ByName.Values.ToList();

        public ConsumerTopic Add(string name, int partitions, Uuid? id = null) => ByName[name] = new ConsumerTopic(name, id ?? Uuid.NewRandom(), partitions);
    }

    private static ConsumerHeartbeatRequest Join(string member, string topic = "t", string? instance = null, string? assignor = null) =>
        new("g", member, 0, instance, null, 30_000, [topic], null, assignor, [], "client", "/127.0.0.1");

    private static ConsumerHeartbeatRequest Beat(string member, int epoch, IEnumerable<(Uuid, IReadOnlyList<int>)>? owned = null, string? instance = null) =>
        new("g", member, epoch, instance, null, -1, null, null, null, owned?.ToList(), "client", "/127.0.0.1");

    private static List<(Uuid, IReadOnlyList<int>)> Owned(ConsumerHeartbeatResult r) => r.Assignment!.ToList();

    private static int Count(ConsumerHeartbeatResult r) => r.Assignment?.Sum(t => t.Partitions.Count) ?? 0;

    private static async Task<(GroupFixture Fixture, Topics Topics)> StartAsync(int partitions = 4)
    {
        var fixture = new GroupFixture();
        var topics = new Topics();
        topics.Add("t", partitions);
        fixture.Coordinator.Topics = topics;
        await Task.CompletedTask;
        return (fixture, topics);
    }

    [Fact]
    public async Task Second_member_gets_partitions_only_after_the_first_revoked_them()
    {
        var (f, _) = await StartAsync();
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a")).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, a.Error);
        Assert.Equal(1, a.MemberEpoch);
        Assert.Equal(4, Count(a));

        // b joins: epoch 2, but every partition it should get is still a's.
        var b = await c.ConsumerHeartbeatAsync(Join("b")).WaitAsync(Wait);
        Assert.Equal(2, b.MemberEpoch);
        Assert.Equal(0, Count(b));
        Assert.Equal(ConsumerMemberState.UnreleasedPartitions, (await c.ConsumerMemberAsync("g", "b"))!.Value.State);

        // a is told to keep two; its epoch waits for the revocation.
        var a2 = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        Assert.Equal(1, a2.MemberEpoch);
        Assert.Equal(2, Count(a2));
        Assert.Equal((1, ConsumerMemberState.UnrevokedPartitions, 2, 2), (await c.ConsumerMemberAsync("g", "a"))!.Value);

        // b still waits while a owns them.
        Assert.Equal(0, Count(await c.ConsumerHeartbeatAsync(Beat("b", 2, [])).WaitAsync(Wait)));

        var a3 = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a2))).WaitAsync(Wait);
        Assert.Equal(2, a3.MemberEpoch);
        Assert.Equal(2, Count(a3));
        var b2 = await c.ConsumerHeartbeatAsync(Beat("b", 2, [])).WaitAsync(Wait);
        Assert.Equal(2, Count(b2));
        Assert.Empty(Owned(a3).SelectMany(t => t.Item2.Select(p => (t.Item1, p))).Intersect(Owned(b2).SelectMany(t => t.Item2.Select(p => (t.Item1, p)))));
        Assert.Equal("Stable", Assert.Single(await c.ListAsync([]), g => g.GroupId == "g").State);
    }

    [Fact]
    public async Task Silent_member_expires_after_the_session_timeout_and_its_partitions_move()
    {
        var (f, _) = await StartAsync();
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a")).WaitAsync(Wait);
        var b = await c.ConsumerHeartbeatAsync(Join("b")).WaitAsync(Wait);
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        b = await c.ConsumerHeartbeatAsync(Beat("b", 2, [])).WaitAsync(Wait);
        Assert.Equal(2, Count(b));

        // a heartbeats every 5 s; b is silent past group.consumer.session.timeout.ms (45 s).
        for (var i = 0; i < 10; i++)
        {
            await f.AdvanceAsync(TimeSpan.FromSeconds(5));
            a = await c.ConsumerHeartbeatAsync(Beat("a", a.MemberEpoch, Owned(a))).WaitAsync(Wait);
        }

        Assert.Null(await c.ConsumerMemberAsync("g", "b"));
        Assert.Equal(3, a.MemberEpoch);
        Assert.Equal(4, Count(a));
        Assert.Equal(ErrorCode.UnknownMemberId, (await c.ConsumerHeartbeatAsync(Beat("b", 2, [])).WaitAsync(Wait)).Error);
    }

    [Fact]
    public async Task Member_that_does_not_revoke_within_its_rebalance_timeout_is_removed()
    {
        var (f, _) = await StartAsync();
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a")).WaitAsync(Wait);
        await c.ConsumerHeartbeatAsync(Join("b")).WaitAsync(Wait);
        await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        for (var i = 0; i < 7; i++)
        {
            await f.AdvanceAsync(TimeSpan.FromSeconds(5));
            // a keeps heartbeating but never releases; b heartbeats too.
            if (await c.ConsumerMemberAsync("g", "a") is not null)
            {
                await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
            }

            await c.ConsumerHeartbeatAsync(Beat("b", (await c.ConsumerMemberAsync("g", "b"))!.Value.Epoch, [])).WaitAsync(Wait);
        }

        Assert.Null(await c.ConsumerMemberAsync("g", "a"));
        Assert.Equal(4, (await c.ConsumerMemberAsync("g", "b"))!.Value.Assigned);
    }

    [Fact]
    public async Task Epochs_are_checked_on_heartbeats_and_offset_commits()
    {
        var (f, _) = await StartAsync();
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a")).WaitAsync(Wait);
        Assert.Equal(ErrorCode.FencedMemberEpoch, (await c.ConsumerHeartbeatAsync(Beat("a", 5, Owned(a))).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.None, Assert.Single(await c.CommitAsync("g", 1, "a", null, [("t", 0, 7, -1, null)]).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.StaleMemberEpoch, Assert.Single(await c.CommitAsync("g", 0, "a", null, [("t", 0, 8, -1, null)]).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, Assert.Single(await c.CommitAsync("g", 1, "x", null, [("t", 0, 8, -1, null)]).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.StaleMemberEpoch, await c.ValidateOffsetFetchAsync("g", "a", 3));
        Assert.Equal(ErrorCode.None, await c.ValidateOffsetFetchAsync("g", "a", 1));
        Assert.Equal(7, (await c.CommittedAsync("g", "t", 0))!.Offset);

        // TxnOffsetCommit with the consumer's group metadata (KIP-447): a stale epoch is ILLEGAL_GENERATION there.
        Assert.Equal(ErrorCode.IllegalGeneration, Assert.Single(await c.CommitTransactionalAsync("g", "tx", 1, 0, 0, "a", null, [("t", 0, 9, -1, null)]).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.None, Assert.Single(await c.CommitTransactionalAsync("g", "tx", 1, 0, 1, "a", null, [("t", 0, 9, -1, null)]).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.InvalidRequest, (await c.ConsumerHeartbeatAsync(new ConsumerHeartbeatRequest("g", "rx", 0, null, null, 30_000, null, "a(b", null, [], "client", "/127.0.0.1")).WaitAsync(Wait)).Error);

        // The classic protocol and the consumer protocol do not share a group id.
        Assert.Equal((short)ErrorCode.InconsistentGroupProtocol, (await c.JoinAsync(GroupFixture.Join("g")).WaitAsync(Wait)).Error);
        var classic = await f.JoinStableAsync("classic");
        Assert.Equal(ErrorCode.GroupIdNotFound, (await c.ConsumerHeartbeatAsync(Join("a") with { GroupId = "classic" }).WaitAsync(Wait)).Error);
        Assert.Equal(ErrorCode.UnsupportedAssignor, (await c.ConsumerHeartbeatAsync(Join("z", assignor: "sticky")).WaitAsync(Wait)).Error);
        var listed = await c.ListAsync([]);
        Assert.Equal("consumer", listed.Single(g => g.GroupId == "g").Type);
        Assert.Equal("classic", listed.Single(g => g.GroupId == "classic").Type);
        Assert.NotNull(classic);
    }

    [Fact]
    public async Task Leaving_and_static_members()
    {
        var (f, _) = await StartAsync();
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a", instance: "i-a")).WaitAsync(Wait);
        Assert.Equal(4, Count(a));

        // A static member's temporary leave keeps its partitions; its successor takes them with no new epoch.
        var left = await c.ConsumerHeartbeatAsync(Beat("a", -2, instance: "i-a")).WaitAsync(Wait);
        Assert.Equal(-2, left.MemberEpoch);
        var back = await c.ConsumerHeartbeatAsync(Join("a2", instance: "i-a")).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, back.Error);
        Assert.Equal(1, back.MemberEpoch);
        Assert.Equal(4, Count(back));
        Assert.Null(await c.ConsumerMemberAsync("g", "a"));

        // A second static member with a live instance id is refused.
        Assert.Equal(ErrorCode.UnreleasedInstanceId, (await c.ConsumerHeartbeatAsync(Join("a4", instance: "i-a")).WaitAsync(Wait)).Error);

        // Leaving (-1) frees the partitions at once.
        var b = await c.ConsumerHeartbeatAsync(Join("b")).WaitAsync(Wait);
        Assert.Equal(0, Count(b));
        Assert.Equal(-1, (await c.ConsumerHeartbeatAsync(Beat("a2", -1, instance: "i-a") with { InstanceId = null }).WaitAsync(Wait)).MemberEpoch);
        b = await c.ConsumerHeartbeatAsync(Beat("b", b.MemberEpoch, [])).WaitAsync(Wait);
        Assert.Equal(4, Count(b));
        Assert.Equal(3, b.MemberEpoch);
    }

    [Fact]
    public async Task Added_partitions_and_new_topics_matching_a_regex_rebalance_the_group()
    {
        var (f, topics) = await StartAsync();
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a")).WaitAsync(Wait);
        Assert.Equal(4, Count(a));
        var t = topics.ByName["t"];
        topics.ByName["t"] = t with { Partitions = 6 };
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        Assert.Equal(2, a.MemberEpoch);
        Assert.Equal(6, Count(a));

        var r = await c.ConsumerHeartbeatAsync(new ConsumerHeartbeatRequest("g", "r", 0, null, null, 30_000, null, "orders-.*", null, [], "client", "/127.0.0.1")).WaitAsync(Wait);
        Assert.Equal(0, Count(r));
        topics.Add("orders-eu", 2);
        topics.Add("other", 2);
        r = await c.ConsumerHeartbeatAsync(Beat("r", r.MemberEpoch, [])).WaitAsync(Wait);
        Assert.Equal(2, Count(r));
        Assert.Equal(topics.ByName["orders-eu"].Id, Assert.Single(r.Assignment!).TopicId);
        var described = await c.DescribeConsumerGroupAsync("g");
        Assert.Equal("uniform", described.Assignor);
        Assert.Equal(ErrorCode.GroupIdNotFound, (await c.DescribeConsumerGroupAsync("nope")).Error);
    }

    [Fact]
    public async Task Range_assignor_gives_contiguous_ranges()
    {
        var (f, _) = await StartAsync(5);
        await using var _ = f;
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a", assignor: "range")).WaitAsync(Wait);
        var b = await c.ConsumerHeartbeatAsync(Join("b", assignor: "range")).WaitAsync(Wait);
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        b = await c.ConsumerHeartbeatAsync(Beat("b", 2, [])).WaitAsync(Wait);
        Assert.Equal([0, 1, 2], Assert.Single(a.Assignment!).Partitions);
        Assert.Equal([3, 4], Assert.Single(b.Assignment!).Partitions);
        Assert.Equal("range", (await c.DescribeConsumerGroupAsync("g")).Assignor);
    }

    [Fact]
    public async Task Group_comes_back_from_its_records_after_a_restart()
    {
        var (f, topics) = await StartAsync();
        var c = f.Coordinator;
        var a = await c.ConsumerHeartbeatAsync(Join("a")).WaitAsync(Wait);
        var b = await c.ConsumerHeartbeatAsync(Join("b")).WaitAsync(Wait);
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        a = await c.ConsumerHeartbeatAsync(Beat("a", 1, Owned(a))).WaitAsync(Wait);
        b = await c.ConsumerHeartbeatAsync(Beat("b", 2, [])).WaitAsync(Wait);
        Assert.Single(await c.CommitAsync("g", 2, "b", null, [("t", 1, 42, -1, null)]).WaitAsync(Wait));
        await f.DisposeAsync();

        await using var loaded = f.Restart();
        loaded.Coordinator.Topics = topics;
        var lc = loaded.Coordinator;
        Assert.Equal((2, ConsumerMemberState.Stable, 2, 0), (await lc.ConsumerMemberAsync("g", "a"))!.Value);
        Assert.Equal((2, ConsumerMemberState.Stable, 2, 0), (await lc.ConsumerMemberAsync("g", "b"))!.Value);
        var again = await lc.ConsumerHeartbeatAsync(Beat("b", 2, Owned(b))).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, again.Error);
        Assert.Equal(2, again.MemberEpoch);
        Assert.Equal(42, (await lc.CommittedAsync("g", "t", 1))!.Offset);
        var d = await lc.DescribeConsumerGroupAsync("g");
        Assert.Equal(("Stable", 2, 2), (d.State, d.Epoch, d.AssignmentEpoch));

        // Members leave; the empty group is deleted with its offsets, and stays deleted after a restart.
        await lc.ConsumerHeartbeatAsync(Beat("a", -1)).WaitAsync(Wait);
        Assert.Equal(ErrorCode.NonEmptyGroup, await lc.DeleteAsync("g"));
        await lc.ConsumerHeartbeatAsync(Beat("b", -1)).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, await lc.DeleteAsync("g"));
        await lc.DisposeAsync();
        await using var reloaded = loaded.Restart();
        Assert.Null(await reloaded.Coordinator.StateAsync("g"));
    }
}
