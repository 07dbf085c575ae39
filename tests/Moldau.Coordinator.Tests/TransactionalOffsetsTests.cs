using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Tests;

/// <summary>
/// Offsets committed in a transaction: pending until the marker, committed or dropped by it, the
/// same after a load of the log, and what OffsetFetch (require_stable), deletion and expiry do
/// while a transaction is open.
/// </summary>
public sealed class TransactionalOffsetsTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(10);

    private static Task<List<(string Topic, int Partition, ErrorCode Error)>> TxnCommitAsync(GroupFixture f, string group, long producerId, long offset, string topic = "t", int partition = 0, short epoch = 0, int generation = -1, string member = "", string? instance = null) =>
        f.Coordinator.CommitTransactionalAsync(group, "tx", producerId, epoch, generation, member, instance, [(topic, partition, offset, 3, "txn")]);

    private static Task<List<(string Topic, int Partition, ErrorCode Error)>> CommitAsync(GroupFixture f, string group, long offset, string topic = "t", int partition = 0) =>
        f.Coordinator.CommitAsync(group, -1, string.Empty, null, [(topic, partition, offset, 3, "plain")]);

    private static Task<ErrorCode> EndAsync(GroupFixture f, string group, long producerId, bool commit, short epoch = 0) =>
        f.Coordinator.CompleteTransactionAsync(OffsetsTopic.PartitionFor(group, GroupFixture.Partitions), producerId, epoch, 7, commit);

    private static async Task<(long Offset, ErrorCode Error)> FetchAsync(GroupFixture f, string group, bool requireStable, string topic = "t", int partition = 0)
    {
        var r = Assert.Single(await f.Coordinator.FetchAsync(group, [(topic, [partition])], requireStable).WaitAsync(Wait));
        return (r.Offset?.Offset ?? -1, r.Error);
    }

    /// <summary>The batches of a partition, as (producer id, transactional, control).</summary>
    private static List<(long ProducerId, short Epoch, bool Transactional, bool Control)> Batches(MemoryCoordinatorLog log)
    {
        var bytes = log.Read(0, int.MaxValue);
        var result = new List<(long, short, bool, bool)>();
        var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
        while (batches.MoveNext())
        {
            var b = new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength));
            Assert.True(b.IsCrcValid());
            result.Add((b.ProducerId, b.ProducerEpoch, b.IsTransactional, b.IsControl));
        }

        return result;
    }

    [Fact]
    public async Task A_transactional_commit_is_written_as_a_transactional_batch_and_stays_invisible_until_the_commit_marker()
    {
        await using var f = new GroupFixture();
        await CommitAsync(f, "g", 10);

        Assert.Equal(ErrorCode.None, Assert.Single(await TxnCommitAsync(f, "g", producerId: 1000, offset: 42, epoch: 3).WaitAsync(Wait)).Error);

        Assert.Equal((1000L, (short)3, true, false), Batches(f.LogOf("g"))[1]);
        Assert.Equal((10L, ErrorCode.None), await FetchAsync(f, "g", requireStable: false));
        Assert.Equal((-1L, ErrorCode.UnstableOffsetCommit), await FetchAsync(f, "g", requireStable: true));
        Assert.Equal(10, Assert.Single(await f.Coordinator.FetchAsync("g", null)).Offset!.Offset);

        Assert.Equal(ErrorCode.None, await EndAsync(f, "g", 1000, commit: true, epoch: 3).WaitAsync(Wait));

        var marker = Batches(f.LogOf("g"))[2];
        Assert.Equal((1000L, (short)3, true, true), marker);
        Assert.Equal((42L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
        var committed = (await f.Coordinator.CommittedAsync("g", "t", 0))!;
        Assert.Equal((42L, 3, "txn"), (committed.Offset, committed.LeaderEpoch, committed.Metadata));
    }

    [Fact]
    public async Task An_abort_marker_drops_the_pending_offsets_and_keeps_the_committed_one()
    {
        await using var f = new GroupFixture();
        await CommitAsync(f, "g", 10);
        await TxnCommitAsync(f, "g", 1000, 42);
        await TxnCommitAsync(f, "g", 1000, 43, partition: 1);

        Assert.Equal(ErrorCode.None, await EndAsync(f, "g", 1000, commit: false).WaitAsync(Wait));

        Assert.Equal((10L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
        Assert.Equal((-1L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true, partition: 1));
        Assert.False(await f.Coordinator.HasPendingAsync("g", "t", 0));
    }

    [Fact]
    public async Task A_marker_for_a_producer_with_nothing_pending_is_written_and_changes_nothing()
    {
        await using var f = new GroupFixture();
        await CommitAsync(f, "g", 10);
        await TxnCommitAsync(f, "g", 1000, 42);

        Assert.Equal(ErrorCode.None, await EndAsync(f, "g", 2000, commit: true).WaitAsync(Wait));

        Assert.Equal(3, f.LogOf("g").BatchCount);
        Assert.Equal((-1L, ErrorCode.UnstableOffsetCommit), await FetchAsync(f, "g", requireStable: true));
        Assert.Equal((10L, ErrorCode.None), await FetchAsync(f, "g", requireStable: false));
    }

    [Fact]
    public async Task Two_producers_pending_on_one_partition_each_end_on_their_own()
    {
        await using var f = new GroupFixture();
        await TxnCommitAsync(f, "g", 1000, 42);
        await TxnCommitAsync(f, "g", 2000, 50);

        await EndAsync(f, "g", 1000, commit: false);
        Assert.Equal((-1L, ErrorCode.UnstableOffsetCommit), await FetchAsync(f, "g", requireStable: true));

        await EndAsync(f, "g", 2000, commit: true);
        Assert.Equal((50L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
    }

    [Fact]
    public async Task A_plain_commit_written_after_the_transactional_one_wins_when_the_transaction_commits()
    {
        await using var f = new GroupFixture();
        await TxnCommitAsync(f, "g", 1000, 42);
        await CommitAsync(f, "g", 60);

        await EndAsync(f, "g", 1000, commit: true);

        // Kafka keeps the commit whose record is later in the log.
        Assert.Equal((60L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
        await using var loaded = f.Restart();
        Assert.Equal((60L, ErrorCode.None), await FetchAsync(loaded, "g", requireStable: true));
    }

    [Fact]
    public async Task A_load_replays_transactional_batches_and_markers_in_log_order()
    {
        await using var f = new GroupFixture();
        await CommitAsync(f, "g", 10);
        await TxnCommitAsync(f, "g", 1000, 42);                 // committed below
        await TxnCommitAsync(f, "g", 2000, 99, partition: 1);   // aborted below
        await TxnCommitAsync(f, "g", 3000, 77, partition: 2);   // still open at the restart
        await EndAsync(f, "g", 4000, commit: true);             // a marker with nothing pending
        await EndAsync(f, "g", 1000, commit: true);
        await EndAsync(f, "g", 2000, commit: false);

        await using var loaded = f.Restart();

        Assert.Equal((42L, ErrorCode.None), await FetchAsync(loaded, "g", requireStable: true));
        Assert.Equal((-1L, ErrorCode.None), await FetchAsync(loaded, "g", requireStable: true, partition: 1));
        Assert.Equal((-1L, ErrorCode.UnstableOffsetCommit), await FetchAsync(loaded, "g", requireStable: true, partition: 2));
        Assert.Equal((-1L, ErrorCode.None), await FetchAsync(loaded, "g", requireStable: false, partition: 2));

        // The transaction that was open at the restart ends after it.
        Assert.Equal(ErrorCode.None, await EndAsync(loaded, "g", 3000, commit: true).WaitAsync(Wait));
        Assert.Equal((77L, ErrorCode.None), await FetchAsync(loaded, "g", requireStable: true, partition: 2));
        await using var again = loaded.Restart();
        Assert.Equal((77L, ErrorCode.None), await FetchAsync(again, "g", requireStable: true, partition: 2));
        Assert.Equal((42L, ErrorCode.None), await FetchAsync(again, "g", requireStable: true));
    }

    [Fact]
    public async Task A_marker_that_cannot_be_written_applies_nothing_and_answers_NOT_COORDINATOR()
    {
        await using var f = new GroupFixture();
        await TxnCommitAsync(f, "g", 1000, 42);
        f.LogOf("g").FailAppends = true;

        Assert.Equal(ErrorCode.NotCoordinator, await EndAsync(f, "g", 1000, commit: true).WaitAsync(Wait));
        Assert.True(await f.Coordinator.HasPendingAsync("g", "t", 0));

        f.LogOf("g").FailAppends = false;
        Assert.Equal(ErrorCode.None, await EndAsync(f, "g", 1000, commit: true).WaitAsync(Wait));
        Assert.Equal((42L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
    }

    [Fact]
    public async Task The_pending_offsets_become_visible_only_once_the_marker_is_durable()
    {
        await using var f = new GroupFixture();
        await TxnCommitAsync(f, "g", 1000, 42);
        var log = f.LogOf("g");
        log.Hold();

        var end = EndAsync(f, "g", 1000, commit: true);
        await Task.Delay(50);
        Assert.False(end.IsCompleted);
        Assert.Equal(1, log.Waiting);

        log.Release();
        Assert.Equal(ErrorCode.None, await end.WaitAsync(Wait));
        Assert.Equal((42L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
    }

    [Fact]
    public async Task A_partition_the_coordinator_does_not_have_answers_NOT_COORDINATOR()
    {
        var logs = new MemoryCoordinatorLog?[GroupFixture.Partitions];
        await using var f = new GroupFixture(logs: logs);

        Assert.Equal(ErrorCode.NotCoordinator, await f.Coordinator.CompleteTransactionAsync(GroupFixture.Partitions, 1, 0, 0, true).WaitAsync(Wait));
        Assert.Equal(ErrorCode.NotCoordinator, await f.Coordinator.CompleteTransactionAsync(-1, 1, 0, 0, true).WaitAsync(Wait));
        Assert.Equal(ErrorCode.NotCoordinator, await f.Coordinator.CompleteTransactionAsync(0, 1, 0, 0, true).WaitAsync(Wait));
    }

    [Fact]
    public async Task Before_its_partitions_are_loaded_the_coordinator_answers_COORDINATOR_LOAD_IN_PROGRESS()
    {
        var log = new MemoryCoordinatorLog();
        await using var coordinator = new GroupCoordinator(new GroupCoordinatorOptions { OffsetsTopicPartitions = 1 }, _ => log, (_, _) => true, TimeProvider.System, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);

        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, await coordinator.CompleteTransactionAsync(0, 1, 0, 0, false).WaitAsync(Wait));
        Assert.Equal(0, log.BatchCount);
    }

    [Fact]
    public async Task KIP_447_metadata_is_checked_against_the_group_as_Kafka_does()
    {
        await using var f = new GroupFixture();
        var joined = await f.JoinStableAsync("g");

        Assert.Equal(ErrorCode.None, Assert.Single(await TxnCommitAsync(f, "g", 1000, 1, generation: joined.GenerationId, member: joined.MemberId)).Error);
        Assert.Equal(ErrorCode.IllegalGeneration, Assert.Single(await TxnCommitAsync(f, "g", 1000, 2, generation: joined.GenerationId + 1, member: joined.MemberId)).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, Assert.Single(await TxnCommitAsync(f, "g", 1000, 3, generation: joined.GenerationId, member: "someone-else")).Error);
        Assert.Equal(ErrorCode.UnknownMemberId, Assert.Single(await TxnCommitAsync(f, "g", 1000, 4, generation: joined.GenerationId, member: joined.MemberId, instance: "i-1")).Error);

        // Versions 0-2 carry no group metadata: accepted even while the group has members.
        Assert.Equal(ErrorCode.None, Assert.Single(await TxnCommitAsync(f, "g", 1000, 5)).Error);

        // A group that does not exist: generation -1 only.
        Assert.Equal(ErrorCode.None, Assert.Single(await TxnCommitAsync(f, "simple", 1000, 6)).Error);
        Assert.Equal(ErrorCode.IllegalGeneration, Assert.Single(await TxnCommitAsync(f, "unknown", 1000, 7, generation: 1, member: "m")).Error);

        Assert.Equal(ErrorCode.InvalidGroupId, Assert.Single(await TxnCommitAsync(f, string.Empty, 1000, 8)).Error);

        await EndAsync(f, "g", 1000, commit: true);
        Assert.Equal((5L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
    }

    [Fact]
    public async Task A_static_member_with_another_member_id_is_fenced()
    {
        await using var f = new GroupFixture();
        var join = f.Coordinator.JoinAsync(GroupFixture.Join("g", instance: "i-1"));
        await f.AdvanceAsync(TimeSpan.FromMilliseconds(GroupFixture.InitialDelayMs));
        var joined = await join.WaitAsync(Wait);

        Assert.Equal(ErrorCode.FencedInstanceId, Assert.Single(await TxnCommitAsync(f, "g", 1000, 1, generation: joined.GenerationId, member: "old-member", instance: "i-1")).Error);
        // During CompletingRebalance (no SyncGroup yet) a transactional commit is not refused, unlike a plain one.
        Assert.Equal(ErrorCode.None, Assert.Single(await TxnCommitAsync(f, "g", 1000, 2, generation: joined.GenerationId, member: joined.MemberId, instance: "i-1")).Error);
    }

    [Fact]
    public async Task Deleting_the_group_removes_its_pending_offsets_so_a_later_commit_marker_brings_none_back()
    {
        await using var f = new GroupFixture();
        await CommitAsync(f, "g", 10);
        await TxnCommitAsync(f, "g", 1000, 42);
        await TxnCommitAsync(f, "g", 1000, 43, partition: 1);

        Assert.Equal(ErrorCode.None, await f.Coordinator.DeleteAsync("g").WaitAsync(Wait));
        Assert.False(await f.Coordinator.HasPendingAsync("g", "t", 1));

        await EndAsync(f, "g", 1000, commit: true);
        Assert.Empty(await f.Coordinator.FetchAsync("g", null));
        await using var loaded = f.Restart();
        Assert.Empty(await loaded.Coordinator.FetchAsync("g", null));
        Assert.Null(await loaded.Coordinator.StateAsync("g"));
    }

    [Fact]
    public async Task OffsetDelete_removes_a_pending_offset_too()
    {
        await using var f = new GroupFixture();
        await TxnCommitAsync(f, "g", 1000, 42);

        var (error, results) = await f.Coordinator.DeleteOffsetsAsync("g", [("t", 0)]).WaitAsync(Wait);

        Assert.Equal(ErrorCode.None, error);
        Assert.Equal(ErrorCode.None, Assert.Single(results).Error);
        await EndAsync(f, "g", 1000, commit: true);
        Assert.Equal((-1L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
    }

    [Fact]
    public async Task Offsets_with_a_transaction_pending_do_not_expire_and_the_group_is_kept_until_it_ends()
    {
        var options = new GroupCoordinatorOptions { OffsetsTopicPartitions = GroupFixture.Partitions, OffsetsRetentionMs = 60_000, OffsetsRetentionCheckIntervalMs = 10_000 };
        await using var f = new GroupFixture(options: options);
        await CommitAsync(f, "g", 10);
        await TxnCommitAsync(f, "g", 1000, 42);
        await TxnCommitAsync(f, "only-pending", 1000, 5);

        await f.AdvanceAsync(TimeSpan.FromMinutes(5));

        Assert.Equal((10L, ErrorCode.None), await FetchAsync(f, "g", requireStable: false));
        Assert.NotNull(await f.Coordinator.StateAsync("only-pending"));

        await EndAsync(f, "g", 1000, commit: true);
        await EndAsync(f, "only-pending", 1000, commit: true);
        Assert.Equal((42L, ErrorCode.None), await FetchAsync(f, "g", requireStable: true));
        Assert.Equal((5L, ErrorCode.None), await FetchAsync(f, "only-pending", requireStable: true));
    }

    [Fact]
    public async Task A_refused_or_failed_transactional_write_fails_its_partitions_and_leaves_nothing_pending()
    {
        await using var f = new GroupFixture();
        f.LogOf("g").FailAppends = true;

        Assert.Equal(ErrorCode.NotCoordinator, Assert.Single(await TxnCommitAsync(f, "g", 1000, 42).WaitAsync(Wait)).Error);
        Assert.False(await f.Coordinator.HasPendingAsync("g", "t", 0));

        f.LogOf("g").FailAppends = false;
        f.LogOf("g").RefuseAppends = ErrorCode.InvalidProducerEpoch;
        Assert.Equal(ErrorCode.InvalidProducerEpoch, Assert.Single(await TxnCommitAsync(f, "g", 1000, 42).WaitAsync(Wait)).Error);
        Assert.False(await f.Coordinator.HasPendingAsync("g", "t", 0));
        Assert.Equal(0, f.LogOf("g").BatchCount);
    }

    [Fact]
    public async Task A_refused_marker_answers_the_refusal_and_the_offsets_stay_pending()
    {
        await using var f = new GroupFixture();
        await TxnCommitAsync(f, "g", 1000, 42);
        f.LogOf("g").RefuseAppends = ErrorCode.InvalidProducerEpoch;

        Assert.Equal(ErrorCode.InvalidProducerEpoch, await EndAsync(f, "g", 1000, commit: true).WaitAsync(Wait));
        Assert.True(await f.Coordinator.HasPendingAsync("g", "t", 0));
    }

    [Fact]
    public async Task With_a_verifier_the_transaction_is_verified_before_anything_is_written()
    {
        await using var f = new GroupFixture();
        var asked = new List<(string, long, short, int)>();
        var answer = ErrorCode.TransactionAbortable;
        f.Coordinator.TransactionVerifier = (id, producerId, epoch, partition) =>
        {
            asked.Add((id, producerId, epoch, partition));
            return Task.FromResult(answer);
        };

        Assert.Equal(ErrorCode.TransactionAbortable, Assert.Single(await TxnCommitAsync(f, "g", 1000, 42, epoch: 4).WaitAsync(Wait)).Error);
        Assert.Equal(("tx", 1000L, (short)4, OffsetsTopic.PartitionFor("g", GroupFixture.Partitions)), Assert.Single(asked));
        Assert.Equal(0, f.LogOf("g").BatchCount);

        answer = ErrorCode.ProducerFenced;
        Assert.Equal(ErrorCode.InvalidProducerEpoch, Assert.Single(await TxnCommitAsync(f, "g", 1000, 42).WaitAsync(Wait)).Error);
        answer = ErrorCode.NetworkException;
        Assert.Equal(ErrorCode.CoordinatorLoadInProgress, Assert.Single(await TxnCommitAsync(f, "g", 1000, 42).WaitAsync(Wait)).Error);
        Assert.Equal(0, f.LogOf("g").BatchCount);

        answer = ErrorCode.None;
        Assert.Equal(ErrorCode.None, Assert.Single(await TxnCommitAsync(f, "g", 1000, 42).WaitAsync(Wait)).Error);
        Assert.True(await f.Coordinator.HasPendingAsync("g", "t", 0));
    }
}
