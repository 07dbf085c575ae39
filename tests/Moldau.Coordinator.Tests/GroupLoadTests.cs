using Moldau.Protocol;

namespace Moldau.Coordinator.Tests;

/// <summary>
/// What a load of <c>__consumer_offsets</c> makes of a group's record, as Kafka's group coordinator
/// loads it: the members come back with fresh sessions, those that go on heartbeating carry on,
/// those that don't expire and the group rebalances.
/// </summary>
public sealed class GroupLoadTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan Session = TimeSpan.FromMilliseconds(GroupFixture.SessionTimeoutMs);

    /// <summary>Two members, stable at generation 2: the first got [1], the second [2].</summary>
    private static async Task<(JoinResult First, JoinResult Second)> TwoStableMembersAsync(GroupFixture f, string group, string? firstInstance = null, string? secondInstance = null)
    {
        var join = f.Coordinator.JoinAsync(GroupFixture.Join(group, instance: firstInstance));
        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.InitialDelayMs));
        var first = await join.WaitAsync(Wait);
        Assert.Equal(0, (await f.Coordinator.SyncAsync(group, first.GenerationId, first.MemberId, firstInstance, null, null, [(first.MemberId, [1])]).WaitAsync(Wait)).Error);

        var secondJoin = f.Coordinator.JoinAsync(GroupFixture.Join(group, instance: secondInstance));
        var firstJoin = await f.Coordinator.JoinAsync(GroupFixture.Join(group, first.MemberId, firstInstance)).WaitAsync(Wait);
        var second = await secondJoin.WaitAsync(Wait);
        Assert.Equal((0, 0, 2), (firstJoin.Error, second.Error, second.GenerationId));
        var secondSync = f.Coordinator.SyncAsync(group, 2, second.MemberId, secondInstance, null, null, []);
        Assert.Equal(0, (await f.Coordinator.SyncAsync(group, 2, first.MemberId, firstInstance, null, null, [(first.MemberId, [1]), (second.MemberId, [2])]).WaitAsync(Wait)).Error);
        Assert.Equal(new byte[] { 2 }, (await secondSync.WaitAsync(Wait)).Assignment);
        return (firstJoin, second);
    }

    /// <summary>The broker stops (its timers with it: the clock is shared) and a new one loads the partitions.</summary>
    private static async Task<GroupFixture> RestartAsync(GroupFixture f)
    {
        await f.Coordinator.DisposeAsync();
        return f.Restart();
    }

    [Fact]
    public async Task A_stable_group_loads_with_its_members_and_their_heartbeats_commits_and_transactional_commits_succeed()
    {
        await using var f = new GroupFixture();
        var (first, second) = await TwoStableMembersAsync(f, "g");

        await using var loaded = await RestartAsync(f);

        Assert.Equal(GroupState.Stable, await loaded.Coordinator.StateAsync("g"));
        var described = await loaded.Coordinator.DescribeAsync("g");
        Assert.Equal(("Stable", "consumer", "range"), (described.State, described.ProtocolType, described.ProtocolName));
        Assert.Equal(new[] { first.MemberId, second.MemberId }.Order(StringComparer.Ordinal), described.Members.Select(m => m.MemberId).Order(StringComparer.Ordinal));
        var loadedFirst = described.Members.Single(m => m.MemberId == first.MemberId);
        Assert.Equal(("client", "/127.0.0.1"), (loadedFirst.ClientId, loadedFirst.ClientHost));
        Assert.Equal(GroupFixture.Subscription("t"), loadedFirst.Metadata);
        Assert.Equal(new byte[] { 1 }, loadedFirst.Assignment);
        Assert.Equal(new byte[] { 2 }, described.Members.Single(m => m.MemberId == second.MemberId).Assignment);

        Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, null));
        Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 2, second.MemberId, null));
        Assert.Equal(ErrorCode.IllegalGeneration, await loaded.Coordinator.HeartbeatAsync("g", 1, first.MemberId, null));
        Assert.Equal(ErrorCode.UnknownMemberId, await loaded.Coordinator.HeartbeatAsync("g", 2, "someone-else", null));

        var committed = await loaded.Coordinator.CommitAsync("g", 2, first.MemberId, null, [("t", 0, 5, 0, null)]).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, Assert.Single(committed).Error);
        var inTransaction = await loaded.Coordinator.CommitTransactionalAsync("g", "tx", 1000, 0, 2, second.MemberId, null, [("t", 1, 9, 0, null)]).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, Assert.Single(inTransaction).Error);
        Assert.Equal(5, (await loaded.Coordinator.CommittedAsync("g", "t", 0))!.Offset);

        // A follower's SyncGroup of the loaded generation gets its assignment again.
        var sync = await loaded.Coordinator.SyncAsync("g", 2, second.MemberId, null, null, null, []).WaitAsync(Wait);
        Assert.Equal(0, sync.Error);
        Assert.Equal(new byte[] { 2 }, sync.Assignment);
    }

    [Fact]
    public async Task Loaded_sessions_start_at_the_load_not_at_the_last_heartbeat_before_it()
    {
        await using var f = new GroupFixture();
        var (first, _) = await TwoStableMembersAsync(f, "g");

        // The broker was down for longer than any session.
        await f.Coordinator.DisposeAsync();
        f.Time.Advance(TimeSpan.FromHours(1));
        await using var loaded = await RestartAsync(f);

        await loaded.AdvanceAsync(Session - TimeSpan.FromMilliseconds(1));
        Assert.Equal(GroupState.Stable, await loaded.Coordinator.StateAsync("g"));
        Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, null));
    }

    [Fact]
    public async Task A_loaded_member_that_never_comes_back_expires_after_its_session_timeout_and_the_group_rebalances()
    {
        await using var f = new GroupFixture();
        var (first, second) = await TwoStableMembersAsync(f, "g");
        await using var loaded = await RestartAsync(f);

        // The first member goes on heartbeating; the second never comes back.
        for (var i = 0; i < 4; i++)
        {
            await loaded.AdvanceAsync(Session / 4);
            Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, null));
        }

        await loaded.AdvanceAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal(GroupState.PreparingRebalance, await loaded.Coordinator.StateAsync("g"));
        Assert.Equal(ErrorCode.RebalanceInProgress, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, null));
        Assert.Equal(ErrorCode.UnknownMemberId, await loaded.Coordinator.HeartbeatAsync("g", 2, second.MemberId, null));

        // The one left rejoins and the next generation has it alone.
        var rejoined = await loaded.Coordinator.JoinAsync(GroupFixture.Join("g", first.MemberId)).WaitAsync(Wait);
        Assert.Equal((0, 3, first.MemberId), (rejoined.Error, rejoined.GenerationId, rejoined.LeaderId));
        Assert.Equal(first.MemberId, Assert.Single(rejoined.Members).MemberId);
    }

    [Fact]
    public async Task Static_members_load_with_their_instance_ids()
    {
        await using var f = new GroupFixture();
        var (first, second) = await TwoStableMembersAsync(f, "g", "i-1", "i-2");
        await using var loaded = await RestartAsync(f);

        Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, "i-1"));
        Assert.Equal(ErrorCode.FencedInstanceId, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, "i-2"));
        Assert.Equal(["i-1", "i-2"], (await loaded.Coordinator.DescribeAsync("g")).Members.Select(m => m.InstanceId).Order(StringComparer.Ordinal));

        // The static member restarted too: it takes its old place without a rebalance, and its old id is fenced.
        var again = await loaded.Coordinator.JoinAsync(GroupFixture.Join("g", instance: "i-2")).WaitAsync(Wait);
        Assert.Equal((0, 2), (again.Error, again.GenerationId));
        Assert.NotEqual(second.MemberId, again.MemberId);
        Assert.Equal(GroupState.Stable, await loaded.Coordinator.StateAsync("g"));
        Assert.Equal(ErrorCode.FencedInstanceId, await loaded.Coordinator.HeartbeatAsync("g", 2, second.MemberId, "i-2"));
        Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 2, again.MemberId, "i-2"));
        var sync = await loaded.Coordinator.SyncAsync("g", 2, again.MemberId, "i-2", null, null, []).WaitAsync(Wait);
        Assert.Equal(new byte[] { 2 }, sync.Assignment);
    }

    [Fact]
    public async Task A_rebalance_under_way_at_the_restart_is_lost_and_the_group_loads_as_its_last_assignment()
    {
        await using var f = new GroupFixture();
        var first = await f.JoinStableAsync("g");
        var secondJoin = f.Coordinator.JoinAsync(GroupFixture.Join("g"));
        var rejoined = await f.Coordinator.JoinAsync(GroupFixture.Join("g", first.MemberId)).WaitAsync(Wait);
        Assert.Equal(2, rejoined.GenerationId);
        await secondJoin.WaitAsync(Wait);

        // Generation 2 was never assigned, so never written: the load has generation 1 and its one member.
        await using var loaded = await RestartAsync(f);

        Assert.Equal(GroupState.Stable, await loaded.Coordinator.StateAsync("g"));
        Assert.Equal(first.MemberId, Assert.Single((await loaded.Coordinator.DescribeAsync("g")).Members).MemberId);
        Assert.Equal(ErrorCode.IllegalGeneration, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, null));
        Assert.Equal(ErrorCode.None, await loaded.Coordinator.HeartbeatAsync("g", 1, first.MemberId, null));
    }

    [Fact]
    public async Task An_empty_group_loads_empty()
    {
        await using var f = new GroupFixture();
        var joined = await f.JoinStableAsync("g");
        Assert.Equal(ErrorCode.None, (await f.Coordinator.LeaveAsync("g", [(joined.MemberId, null)])).Error);

        await using var loaded = await RestartAsync(f);

        Assert.Equal(GroupState.Empty, await loaded.Coordinator.StateAsync("g"));
        Assert.Empty((await loaded.Coordinator.DescribeAsync("g")).Members);
        Assert.Equal(ErrorCode.UnknownMemberId, await loaded.Coordinator.HeartbeatAsync("g", joined.GenerationId, joined.MemberId, null));
    }

    [Fact]
    public async Task A_loaded_group_over_a_lowered_group_max_size_rebalances()
    {
        await using var f = new GroupFixture();
        var (first, _) = await TwoStableMembersAsync(f, "g");

        await f.Coordinator.DisposeAsync();
        await using var loaded = new GroupFixture(f.Time, f.Logs, new GroupCoordinatorOptions { OffsetsTopicPartitions = GroupFixture.Partitions, InitialRebalanceDelayMs = GroupFixture.InitialDelayMs, MaxSize = 1 });

        Assert.Equal(GroupState.PreparingRebalance, await loaded.Coordinator.StateAsync("g"));
        Assert.Equal(ErrorCode.RebalanceInProgress, await loaded.Coordinator.HeartbeatAsync("g", 2, first.MemberId, null));
        // Its members may still commit what they processed before they rejoin.
        Assert.Equal(ErrorCode.None, Assert.Single(await loaded.Coordinator.CommitAsync("g", 2, first.MemberId, null, [("t", 0, 5, 0, null)]).WaitAsync(Wait)).Error);
    }
}
