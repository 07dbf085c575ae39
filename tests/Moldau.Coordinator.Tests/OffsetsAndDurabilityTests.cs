using Moldau.Protocol;

namespace Moldau.Coordinator.Tests;

/// <summary>Commits and fetches, what a failed write leaves, what a load rebuilds, and shards that do not wait for each other.</summary>
public sealed class OffsetsAndDurabilityTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static Task<List<(string Topic, int Partition, ErrorCode Error)>> CommitAsync(GroupFixture f, string group, long offset, string topic = "t", int partition = 0) =>
        f.Coordinator.CommitAsync(group, -1, string.Empty, null, [(topic, partition, offset, 3, "meta")]);

    [Fact]
    public async Task A_commit_is_written_as_one_record_and_fetched_back()
    {
        await using var f = new GroupFixture();

        var results = await CommitAsync(f, "g", 42).WaitAsync(Wait);

        Assert.Equal(("t", 0, ErrorCode.None), Assert.Single(results));
        var record = Assert.IsType<OffsetsTopic.OffsetEntry>(Assert.Single(f.LogOf("g").Entries()));
        Assert.Equal(("g", "t", 0, 42L), (record.Group, record.Topic, record.Partition, record.Offset!.Offset));
        var fetched = Assert.Single(await f.Coordinator.FetchAsync("g", null));
        Assert.Equal((42L, 3, "meta"), (fetched.Offset!.Offset, fetched.Offset.LeaderEpoch, fetched.Offset.Metadata));
        Assert.Null(Assert.Single(await f.Coordinator.FetchAsync("g", [("t", [1])])).Offset);
    }

    [Fact]
    public async Task A_commit_that_cannot_be_written_changes_nothing_and_answers_NOT_COORDINATOR()
    {
        await using var f = new GroupFixture();
        await CommitAsync(f, "g", 1);
        f.LogOf("g").FailAppends = true;

        var results = await CommitAsync(f, "g", 2).WaitAsync(Wait);

        Assert.Equal(ErrorCode.NotCoordinator, Assert.Single(results).Error);
        Assert.Equal(1, (await f.Coordinator.CommittedAsync("g", "t", 0))!.Offset);
        f.LogOf("g").FailAppends = false;
        Assert.Equal(ErrorCode.None, Assert.Single(await CommitAsync(f, "g", 3)).Error);
        Assert.Equal(3, (await f.Coordinator.CommittedAsync("g", "t", 0))!.Offset);
    }

    [Fact]
    public async Task A_commit_whose_fsync_fails_is_not_applied()
    {
        await using var f = new GroupFixture();
        var log = f.LogOf("g");
        log.Hold();

        var pending = CommitAsync(f, "g", 5);
        log.FailDurability();

        Assert.Equal(ErrorCode.NotCoordinator, Assert.Single(await pending.WaitAsync(Wait)).Error);
        Assert.Null(await f.Coordinator.CommittedAsync("g", "t", 0));
    }

    [Fact]
    public async Task Without_its_partition_the_coordinator_answers_COORDINATOR_NOT_AVAILABLE()
    {
        var logs = new MemoryCoordinatorLog?[GroupFixture.Partitions];
        await using var f = new GroupFixture(logs: logs);

        Assert.Equal(ErrorCode.CoordinatorNotAvailable, Assert.Single(await CommitAsync(f, "g", 5).WaitAsync(Wait)).Error);
        Assert.Null(await f.Coordinator.CommittedAsync("g", "t", 0));
    }

    [Fact]
    public async Task A_sync_whose_assignment_cannot_be_written_hands_out_nothing_and_the_group_rebalances()
    {
        await using var f = new GroupFixture();
        var join = f.Coordinator.JoinAsync(GroupFixture.Join("g"));
        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.InitialDelayMs));
        var joined = await join.WaitAsync(Wait);
        f.LogOf("g").FailAppends = true;

        var sync = await f.Coordinator.SyncAsync("g", joined.GenerationId, joined.MemberId, null, null, null, [(joined.MemberId, [9])]).WaitAsync(Wait);

        Assert.Equal((short)ErrorCode.NotCoordinator, sync.Error);
        Assert.Empty(sync.Assignment);
        Assert.Equal(GroupState.PreparingRebalance, await f.Coordinator.StateAsync("g"));
        Assert.Empty(f.LogOf("g").Entries());
    }

    [Fact]
    public async Task A_shards_operations_wait_for_its_durability_while_other_shards_go_on()
    {
        await using var f = new GroupFixture();
        var groups = GroupFixture.GroupsOnDifferentShards(2);
        var held = f.LogOf(groups[0]);
        held.Hold();

        var slow = CommitAsync(f, groups[0], 7);
        var readBehind = f.Coordinator.CommittedAsync(groups[0], "t", 0);
        var fast = await CommitAsync(f, groups[1], 8).WaitAsync(Wait);
        Assert.Equal(ErrorCode.None, Assert.Single(fast).Error);
        Assert.Equal(8, (await f.Coordinator.CommittedAsync(groups[1], "t", 0).WaitAsync(Wait))!.Offset);

        await Task.Delay(50);
        Assert.False(slow.IsCompleted);
        Assert.False(readBehind.IsCompleted);
        Assert.Equal(1, held.Waiting);

        held.Release();
        Assert.Equal(ErrorCode.None, Assert.Single(await slow.WaitAsync(Wait)).Error);
        // The read queued behind the commit sees it: reads see committed state, in order.
        Assert.Equal(7, (await readBehind.WaitAsync(Wait))!.Offset);
    }

    [Fact]
    public async Task Loading_the_partitions_again_rebuilds_offsets_groups_and_deletions()
    {
        await using var f = new GroupFixture();
        var joined = await f.JoinStableAsync("members");
        await CommitAsync(f, "kept", 11, partition: 0);
        await CommitAsync(f, "kept", 12, partition: 1);
        await CommitAsync(f, "gone", 13);
        Assert.Equal(ErrorCode.None, await f.Coordinator.DeleteAsync("gone"));
        var (error, results) = await f.Coordinator.DeleteOffsetsAsync("kept", [("t", 1)]);
        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, Assert.Single(results).Error);

        await using var restarted = f.Restart();

        Assert.Equal(11, (await restarted.Coordinator.CommittedAsync("kept", "t", 0))!.Offset);
        Assert.Null(await restarted.Coordinator.CommittedAsync("kept", "t", 1));
        Assert.Null(await restarted.Coordinator.StateAsync("gone"));
        var listed = await restarted.Coordinator.ListAsync([]);
        Assert.Equal(["kept", "members"], listed.Select(g => g.GroupId).Order(StringComparer.Ordinal));
        Assert.Equal("consumer", listed.Single(g => g.GroupId == "members").ProtocolType);

        // The generation carries on: the next rebalance makes generation 2 (the loaded member,
        // silent, expires after its session timeout and the join completes without it).
        var join = restarted.Coordinator.JoinAsync(GroupFixture.Join("members"));
        await restarted.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.SessionTimeoutMs + 1));
        Assert.Equal(joined.GenerationId + 1, (await join.WaitAsync(Wait)).GenerationId);
    }

    [Fact]
    public async Task Deleting_a_group_with_members_is_refused_and_writes_nothing()
    {
        await using var f = new GroupFixture();
        await f.JoinStableAsync("g");
        var before = f.LogOf("g").BatchCount;

        Assert.Equal(ErrorCode.NonEmptyGroup, await f.Coordinator.DeleteAsync("g"));
        Assert.Equal(ErrorCode.GroupIdNotFound, await f.Coordinator.DeleteAsync("never"));
        Assert.Equal(before, f.LogOf("g").BatchCount);
    }

    [Fact]
    public async Task Offsets_of_an_empty_group_expire_after_the_retention_and_the_group_goes_with_them()
    {
        var options = new GroupCoordinatorOptions
        {
            OffsetsTopicPartitions = GroupFixture.Partitions,
            InitialRebalanceDelayMs = GroupFixture.InitialDelayMs,
            OffsetsRetentionMs = 60_000,
            OffsetsRetentionCheckIntervalMs = 10_000,
        };
        await using var f = new GroupFixture(options: options);
        await CommitAsync(f, "g", 1);

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(50_000));
        Assert.NotNull(await f.Coordinator.CommittedAsync("g", "t", 0));

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(10_000));
        Assert.Null(await f.Coordinator.CommittedAsync("g", "t", 0));
        Assert.Null(await f.Coordinator.StateAsync("g"));
        var tombstones = f.LogOf("g").Entries().Skip(1).ToList();
        Assert.Contains(tombstones, e => e is OffsetsTopic.OffsetEntry { Offset: null });
        Assert.Contains(tombstones, e => e is OffsetsTopic.GroupEntry { Value: null });
    }
}
