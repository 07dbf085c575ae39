using Moldau.Protocol;

namespace Moldau.Coordinator.Tests;

/// <summary>The classic protocol's timings on the runtime, driven by a fake clock.</summary>
public sealed class GroupMembershipTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task The_first_join_completes_when_the_initial_rebalance_delay_has_passed()
    {
        await using var f = new GroupFixture();
        var join = f.Coordinator.JoinAsync(GroupFixture.Join("g"));

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.InitialDelayMs - 1));
        await Task.Delay(50);
        Assert.False(join.IsCompleted);

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(1));
        var joined = await join.WaitAsync(Wait);
        Assert.Equal((0, 1), (joined.Error, joined.GenerationId));
        Assert.Equal(joined.MemberId, joined.LeaderId);
        Assert.Single(joined.Members);
    }

    [Fact]
    public async Task The_leaders_sync_is_answered_once_the_group_record_is_written_and_then_the_group_is_stable()
    {
        await using var f = new GroupFixture();
        var joined = await f.JoinStableAsync("g");

        Assert.Equal(GroupState.Stable, await f.Coordinator.StateAsync("g"));
        var group = Assert.IsType<OffsetsTopic.GroupEntry>(f.LogOf("g").Entries().Last());
        Assert.Equal(("g", 1, "range", joined.MemberId), (group.Group, group.Value!.Generation, group.Value.Protocol, group.Value.Leader));
        Assert.Equal(new byte[] { 1, 2, 3 }, Assert.Single(group.Value.Members).Assignment);
    }

    [Fact]
    public async Task A_member_that_stops_heartbeating_expires_after_its_session_timeout_and_not_before()
    {
        await using var f = new GroupFixture();
        var joined = await f.JoinStableAsync("g");

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.SessionTimeoutMs - 1000));
        Assert.Equal(ErrorCode.None, await f.Coordinator.HeartbeatAsync("g", joined.GenerationId, joined.MemberId, null));

        // The heartbeat restarted the session: a full timeout from it, the member is still there.
        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.SessionTimeoutMs));
        Assert.Equal(GroupState.Stable, await f.Coordinator.StateAsync("g"));

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal(GroupState.Empty, await f.Coordinator.StateAsync("g"));
        Assert.Equal(ErrorCode.UnknownMemberId, await f.Coordinator.HeartbeatAsync("g", joined.GenerationId, joined.MemberId, null));
        var emptied = Assert.IsType<OffsetsTopic.GroupEntry>(f.LogOf("g").Entries().Last());
        Assert.Empty(emptied.Value!.Members);
    }

    [Fact]
    public async Task A_second_member_starts_a_rebalance_that_completes_when_the_first_rejoins()
    {
        await using var f = new GroupFixture();
        var first = await f.JoinStableAsync("g");

        var second = f.Coordinator.JoinAsync(GroupFixture.Join("g"));
        Assert.Equal(ErrorCode.RebalanceInProgress, await f.Coordinator.HeartbeatAsync("g", first.GenerationId, first.MemberId, null));
        await Task.Delay(50);
        Assert.False(second.IsCompleted);

        var rejoin = await f.Coordinator.JoinAsync(GroupFixture.Join("g", first.MemberId)).WaitAsync(Wait);
        var joined = await second.WaitAsync(Wait);
        Assert.Equal((2, 2), (rejoin.GenerationId, joined.GenerationId));
        Assert.Equal(2, rejoin.Members.Count);
        Assert.Equal(first.MemberId, rejoin.LeaderId);
    }

    [Fact]
    public async Task A_member_that_does_not_rejoin_within_the_rebalance_timeout_is_dropped_and_the_join_completes_without_it()
    {
        await using var f = new GroupFixture();
        var first = await f.JoinStableAsync("g");
        var second = f.Coordinator.JoinAsync(GroupFixture.Join("g"));

        // Keep the first member's session alive without rejoining.
        for (var elapsed = 0; elapsed < GroupFixture.RebalanceTimeoutMs - 5000; elapsed += 5000)
        {
            await f.AdvanceAsync(TimeSpan.FromMilliseconds(5000));
            Assert.Equal(ErrorCode.RebalanceInProgress, await f.Coordinator.HeartbeatAsync("g", first.GenerationId, first.MemberId, null));
        }

        Assert.False(second.IsCompleted);
        await f.AdvanceAsync(TimeSpan.FromMilliseconds(5000));
        var joined = await second.WaitAsync(Wait);
        Assert.Equal(0, joined.Error);
        Assert.Equal(joined.MemberId, joined.LeaderId);
        Assert.Single(joined.Members);
        Assert.Equal(ErrorCode.UnknownMemberId, await f.Coordinator.HeartbeatAsync("g", joined.GenerationId, first.MemberId, null));
    }

    [Fact]
    public async Task A_member_that_sends_no_sync_within_the_rebalance_timeout_is_removed()
    {
        await using var f = new GroupFixture();
        var first = await f.JoinStableAsync("g");
        var second = f.Coordinator.JoinAsync(GroupFixture.Join("g"));
        var rejoin = await f.Coordinator.JoinAsync(GroupFixture.Join("g", first.MemberId)).WaitAsync(Wait);
        var joined = await second.WaitAsync(Wait);

        // The leader syncs; the other member never does (it heartbeats, which does not count).
        var leaderSync = f.Coordinator.SyncAsync("g", rejoin.GenerationId, rejoin.MemberId, null, null, null, [(rejoin.MemberId, [1]), (joined.MemberId, [2])]);
        Assert.Equal(0, (await leaderSync.WaitAsync(Wait)).Error);
        for (var elapsed = 0; elapsed < GroupFixture.RebalanceTimeoutMs - 5000; elapsed += 5000)
        {
            await f.AdvanceAsync(TimeSpan.FromMilliseconds(5000));
            Assert.Equal(ErrorCode.None, await f.Coordinator.HeartbeatAsync("g", rejoin.GenerationId, rejoin.MemberId, null));
            Assert.Equal(ErrorCode.None, await f.Coordinator.HeartbeatAsync("g", joined.GenerationId, joined.MemberId, null));
        }

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(4999));
        Assert.Equal(ErrorCode.None, await f.Coordinator.HeartbeatAsync("g", joined.GenerationId, joined.MemberId, null));

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(1));
        Assert.Equal(ErrorCode.UnknownMemberId, await f.Coordinator.HeartbeatAsync("g", joined.GenerationId, joined.MemberId, null));
        Assert.Equal(ErrorCode.RebalanceInProgress, await f.Coordinator.HeartbeatAsync("g", rejoin.GenerationId, rejoin.MemberId, null));
    }

    [Fact]
    public async Task A_member_id_handed_out_with_MEMBER_ID_REQUIRED_is_forgotten_after_the_session_timeout()
    {
        await using var f = new GroupFixture();
        var required = await f.Coordinator.JoinAsync(GroupFixture.Join("g", requireKnownMemberId: true)).WaitAsync(Wait);
        Assert.Equal((short)ErrorCode.MemberIdRequired, required.Error);

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.SessionTimeoutMs));
        var late = await f.Coordinator.JoinAsync(GroupFixture.Join("g", required.MemberId, requireKnownMemberId: true)).WaitAsync(Wait);
        Assert.Equal((short)ErrorCode.UnknownMemberId, late.Error);
    }

    [Fact]
    public async Task A_restarted_static_member_fences_its_old_member_id()
    {
        await using var f = new GroupFixture();
        var join = f.Coordinator.JoinAsync(GroupFixture.Join("g", instance: "i-1"));
        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.InitialDelayMs));
        var old = await join.WaitAsync(Wait);
        Assert.Equal(0, (await f.Coordinator.SyncAsync("g", old.GenerationId, old.MemberId, "i-1", null, null, [(old.MemberId, [7])]).WaitAsync(Wait)).Error);

        var restarted = await f.Coordinator.JoinAsync(GroupFixture.Join("g", instance: "i-1")).WaitAsync(Wait);
        Assert.Equal(0, restarted.Error);
        Assert.NotEqual(old.MemberId, restarted.MemberId);
        Assert.Equal(ErrorCode.FencedInstanceId, await f.Coordinator.HeartbeatAsync("g", old.GenerationId, old.MemberId, "i-1"));
        Assert.Equal(ErrorCode.None, await f.Coordinator.HeartbeatAsync("g", restarted.GenerationId, restarted.MemberId, "i-1"));
    }

    [Fact]
    public async Task Joins_past_group_max_size_are_refused()
    {
        await using var f = new GroupFixture(options: new GroupCoordinatorOptions { OffsetsTopicPartitions = GroupFixture.Partitions, InitialRebalanceDelayMs = GroupFixture.InitialDelayMs, MaxSize = 1 });
        await f.JoinStableAsync("g");

        var refused = await f.Coordinator.JoinAsync(GroupFixture.Join("g")).WaitAsync(Wait);
        Assert.Equal((short)ErrorCode.GroupMaxSizeReached, refused.Error);
    }
}
