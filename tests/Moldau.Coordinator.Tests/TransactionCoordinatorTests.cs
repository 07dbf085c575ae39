using Moldau.Coordinator.Transactions;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Tests;

/// <summary>The transaction coordinator's state machine, as Kafka's TransactionCoordinator answers, over in-memory partitions and a fake clock.</summary>
public sealed class TransactionCoordinatorTests
{
    private static readonly (string, int)[] TwoPartitions = [("orders", 0), ("orders", 1)];

    [Fact]
    public async Task A_new_transactional_id_gets_a_producer_id_at_epoch_0_and_an_Empty_record()
    {
        await using var f = new TransactionFixture();
        var init = await f.InitAsync("tx-a", 30_000);
        Assert.Equal(new InitProducerIdResult(ErrorCode.None, 1000, 0), init);

        var record = Assert.Single(f.RecordsOf("tx-a"));
        Assert.Equal(new TransactionRecord(1000, 0, 30_000, TransactionState.Empty, [], -1, record!.LastUpdateTimestamp), record with { Partitions = [] });
        Assert.Empty(record.Partitions);
        var d = await f.Coordinator.DescribeAsync("tx-a");
        Assert.Equal(("Empty", 1000L, (short)0, 30_000, -1L), (d.State, d.ProducerId, d.ProducerEpoch, d.TimeoutMs, d.StartTimestamp));
    }

    [Fact]
    public async Task Records_are_Kafkas_bytes_key_version_0_and_value_version_0()
    {
        Assert.Equal(new byte[] { 0, 0, 0, 2, (byte)'t', (byte)'x' }, TransactionLog.Key("tx"));

        var value = TransactionLog.Value(new TransactionRecord(5, 3, 60_000, TransactionState.Ongoing, [("b", 1), ("a", 2), ("a", 0)], 100, 200));
        byte[] expected =
        [
            0, 0,                                  // value version 0
            0, 0, 0, 0, 0, 0, 0, 5,                // producer id
            0, 3,                                  // producer epoch
            0, 0, 0xEA, 0x60,                      // timeout 60000
            1,                                     // Ongoing
            0, 0, 0, 2,                            // two topics
            0, 1, (byte)'b', 0, 0, 0, 1, 0, 0, 0, 1,
            0, 1, (byte)'a', 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 0, 200,              // last update
            0, 0, 0, 0, 0, 0, 0, 100,              // start
        ];
        Assert.Equal(expected, value);

        // Empty carries a null partition list, as Kafka writes it.
        var empty = TransactionLog.Value(new TransactionRecord(5, 0, 60_000, TransactionState.Empty, [], -1, 200));
        Assert.Equal(new byte[] { 0xFF, 0xFF, 0xFF, 0xFF }, empty[17..21]);
        var (id, decoded) = TransactionLog.Decode(TransactionLog.Key("tx"), value)!.Value;
        Assert.Equal("tx", id);
        Assert.Equal([("b", 1), ("a", 0), ("a", 2)], decoded!.Partitions);
        await Task.CompletedTask;
    }

    [Fact]
    public void Partition_is_abs_of_the_Java_hash_code_modulo_the_partition_count()
    {
        // "my-txn".hashCode() in Java is -1061187895; "polygenelubricants" hashes to Integer.MIN_VALUE, which Kafka's Utils.abs maps to 0.
        Assert.Equal(45, TransactionLog.PartitionFor("my-txn", 50));
        Assert.Equal(0, TransactionLog.PartitionFor("polygenelubricants", 50));
    }

    [Fact]
    public async Task Init_again_bumps_the_epoch_and_fences_the_previous_producer()
    {
        await using var f = new TransactionFixture();
        var first = await f.InitAsync("tx");
        var second = await f.InitAsync("tx");
        Assert.Equal((first.ProducerId, (short)1), (second.ProducerId, second.ProducerEpoch));

        Assert.Equal(ErrorCode.ProducerFenced, await f.Coordinator.AddPartitionsAsync("tx", first.ProducerId, first.ProducerEpoch, TwoPartitions));
        Assert.Equal(ErrorCode.ProducerFenced, await f.Coordinator.EndTransactionAsync("tx", first.ProducerId, first.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, await f.Coordinator.AddPartitionsAsync("tx", 424242, 1, TwoPartitions));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, await f.Coordinator.AddPartitionsAsync("unknown", second.ProducerId, 1, TwoPartitions));
        Assert.Equal(ErrorCode.None, await f.Coordinator.AddPartitionsAsync("tx", second.ProducerId, second.ProducerEpoch, TwoPartitions));
    }

    [Fact]
    public async Task Commit_writes_PrepareCommit_then_the_markers_then_CompleteCommit()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        f.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(ErrorCode.None, await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, [("orders", 0)]));
        var startedAt = f.Time.GetUtcNow().ToUnixTimeMilliseconds();
        Assert.Equal(ErrorCode.None, await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, [("orders", 1), ("__consumer_offsets", 7)]));
        var ongoing = await f.Coordinator.DescribeAsync("tx");
        Assert.Equal(("Ongoing", startedAt), (ongoing.State, ongoing.StartTimestamp));
        Assert.Equal([("__consumer_offsets", (IReadOnlyList<int>)[7]), ("orders", [0, 1])], ongoing.Topics.OrderBy(t => t.Topic, StringComparer.Ordinal).Select(t => (t.Topic, t.Partitions)).ToList(), new TopicsComparer());

        Assert.Equal(ErrorCode.None, f.Coordinator.VerifyPartition("tx", p.ProducerId, p.ProducerEpoch, "orders", 1));
        Assert.Equal(ErrorCode.TransactionAbortable, f.Coordinator.VerifyPartition("tx", p.ProducerId, p.ProducerEpoch, "orders", 2));
        Assert.Equal(ErrorCode.ProducerFenced, f.Coordinator.VerifyPartition("tx", p.ProducerId, 5, "orders", 1));

        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        await f.WaitForStateAsync("tx", TransactionState.CompleteCommit);
        var written = f.Markers.Snapshot();
        Assert.Equal(3, written.Count);
        Assert.All(written, w => Assert.Equal((p.ProducerId, p.ProducerEpoch, 7, ControlRecordType.Commit), (w.ProducerId, w.Epoch, w.CoordinatorEpoch, w.Result)));
        Assert.Equal(["__consumer_offsets-7", "orders-0", "orders-1"], written.Select(w => $"{w.Topic}-{w.Partition}").Order(StringComparer.Ordinal));

        var states = f.RecordsOf("tx").Select(r => r!.State).ToList();
        Assert.Equal([TransactionState.Empty, TransactionState.Ongoing, TransactionState.Ongoing, TransactionState.PrepareCommit, TransactionState.CompleteCommit], states);
        Assert.Empty(f.RecordsOf("tx")[^1]!.Partitions);

        // Retried EndTxn after the commit: None; an abort now is not a valid transition.
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.InvalidTxnState, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false));
        Assert.Equal(ErrorCode.TransactionAbortable, f.Coordinator.VerifyPartition("tx", p.ProducerId, p.ProducerEpoch, "orders", 1));
    }

    [Fact]
    public async Task EndTxn_while_the_markers_are_written_is_CONCURRENT_TRANSACTIONS_and_AddPartitions_waits_too()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        f.Markers.Hold();
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false));
        Assert.Equal("PrepareAbort", (await f.Coordinator.DescribeAsync("tx")).State);
        Assert.Equal(ErrorCode.ConcurrentTransactions, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false));
        Assert.Equal(ErrorCode.InvalidTxnState, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.ConcurrentTransactions, (await f.InitAsync("tx")).Error);
        Assert.Equal(ErrorCode.ConcurrentTransactions, f.Coordinator.VerifyPartition("tx", p.ProducerId, p.ProducerEpoch, "orders", 0));

        // AddPartitionsToTxn waits for the end, up to EndWaitMs, then answers as Kafka does.
        var add = f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        await Task.Delay(50);
        Assert.False(add.IsCompleted);
        f.Time.Advance(TimeSpan.FromMilliseconds(f.Options.EndWaitMs));
        Assert.Equal(ErrorCode.ConcurrentTransactions, await add.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task AddPartitions_during_the_previous_end_is_answered_once_that_end_is_complete()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        f.Markers.Hold();
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));

        // The next transaction's first partition, while the markers of this one are not durable.
        var add = f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, [("orders", 5)]);
        await Task.Delay(50);
        Assert.False(add.IsCompleted);
        Assert.Equal("PrepareCommit", (await f.Coordinator.DescribeAsync("tx")).State);

        f.Markers.Release();
        Assert.Equal(ErrorCode.None, await add.WaitAsync(TimeSpan.FromSeconds(10)));
        var next = await f.Coordinator.DescribeAsync("tx");
        Assert.Equal("Ongoing", next.State);
        Assert.Equal(("orders", 5), (next.Topics.Single().Topic, next.Topics.Single().Partitions.Single()));

        // The log holds the ended transaction whole before the next one: PrepareCommit, CompleteCommit, Ongoing.
        Assert.Equal(
            [TransactionState.Empty, TransactionState.Ongoing, TransactionState.PrepareCommit, TransactionState.CompleteCommit, TransactionState.Ongoing],
            f.RecordsOf("tx").Select(r => r!.State));
        Assert.Equal(2, f.Markers.Snapshot().Count);
    }

    [Fact]
    public async Task With_no_end_wait_AddPartitions_during_an_end_is_CONCURRENT_TRANSACTIONS_at_once()
    {
        await using var f = new TransactionFixture(options: new TransactionCoordinatorOptions { StateTopicPartitions = TransactionFixture.Partitions, EndWaitMs = 0 });
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        f.Markers.Hold();
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.ConcurrentTransactions, await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions).WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task CompleteCommit_is_applied_once_appended_without_waiting_for_its_fsync()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        f.Markers.Hold();
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));

        // The partition's fsyncs hang from now on: CompleteCommit still counts once appended.
        f.LogOf("tx").Hold();
        f.Markers.Release();
        await f.WaitForStateAsync("tx", TransactionState.CompleteCommit);
        Assert.Equal(TransactionState.CompleteCommit, f.RecordsOf("tx")[^1]!.State);

        // The next transaction's Ongoing is waited for (and with it the CompleteCommit before it).
        var add = f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        await Task.Delay(50);
        Assert.False(add.IsCompleted);
        f.LogOf("tx").Release();
        Assert.Equal(ErrorCode.None, await add.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task EndTxn_with_nothing_open_is_INVALID_TXN_STATE()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        Assert.Equal(ErrorCode.InvalidTxnState, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, await f.Coordinator.EndTransactionAsync("nobody", p.ProducerId, p.ProducerEpoch, commit: true));
    }

    [Fact]
    public async Task Init_during_an_open_transaction_aborts_it_at_a_bumped_epoch_and_answers_CONCURRENT_TRANSACTIONS()
    {
        await using var f = new TransactionFixture();
        var zombie = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", zombie.ProducerId, zombie.ProducerEpoch, TwoPartitions);

        Assert.Equal(ErrorCode.ConcurrentTransactions, (await f.InitAsync("tx")).Error);
        await f.WaitForStateAsync("tx", TransactionState.CompleteAbort);
        Assert.All(f.Markers.Snapshot(), w => Assert.Equal((ControlRecordType.Abort, (short)1), (w.Result, w.Epoch)));
        Assert.Equal(2, f.Markers.Snapshot().Count);

        // The zombie's epoch is fenced; the retry gets epoch 2 (the fence's epoch 1 was never handed out).
        Assert.Equal(ErrorCode.ProducerFenced, await f.Coordinator.EndTransactionAsync("tx", zombie.ProducerId, zombie.ProducerEpoch, commit: true));
        var retry = await f.InitAsync("tx");
        Assert.Equal(new InitProducerIdResult(ErrorCode.None, zombie.ProducerId, 2), retry);
        Assert.Equal([TransactionState.Empty, TransactionState.Ongoing, TransactionState.PrepareAbort, TransactionState.CompleteAbort, TransactionState.Empty], f.RecordsOf("tx").Select(r => r!.State));
    }

    [Fact]
    public async Task Transaction_timeout_is_bounded_by_transaction_max_timeout_ms()
    {
        await using var f = new TransactionFixture(options: new TransactionCoordinatorOptions { StateTopicPartitions = TransactionFixture.Partitions, MaxTimeoutMs = 60_000 });
        Assert.Equal(ErrorCode.InvalidTransactionTimeout, (await f.InitAsync("tx", 60_001)).Error);
        Assert.Equal(ErrorCode.InvalidTransactionTimeout, (await f.InitAsync("tx", 0)).Error);
        Assert.Equal(ErrorCode.InvalidRequest, (await f.InitAsync(string.Empty)).Error);
        Assert.Equal(ErrorCode.None, (await f.InitAsync("tx", 60_000)).Error);
    }

    [Fact]
    public async Task An_expired_open_transaction_is_aborted_by_the_coordinator_with_the_epoch_bumped()
    {
        await using var f = new TransactionFixture(options: new TransactionCoordinatorOptions { StateTopicPartitions = TransactionFixture.Partitions, AbortTimedOutTransactionsIntervalMs = 1_000 });
        var p = await f.InitAsync("tx", timeoutMs: 5_000);
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(4_500));
        Assert.Equal("Ongoing", (await f.Coordinator.DescribeAsync("tx")).State);

        await f.AdvanceAsync(TimeSpan.FromMilliseconds(1_000));
        var done = await f.WaitForStateAsync("tx", TransactionState.CompleteAbort);
        Assert.Equal((short)1, done.ProducerEpoch);
        Assert.All(f.Markers.Snapshot(), w => Assert.Equal((ControlRecordType.Abort, (short)1), (w.Result, w.Epoch)));

        // The producer finds out it was fenced when it next speaks.
        Assert.Equal(ErrorCode.ProducerFenced, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        Assert.Equal(ErrorCode.ProducerFenced, await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions));
        Assert.Equal((short)2, (await f.InitAsync("tx")).ProducerEpoch);
    }

    [Fact]
    public async Task An_idle_transactional_id_expires_after_transactional_id_expiration_ms()
    {
        var options = new TransactionCoordinatorOptions { StateTopicPartitions = TransactionFixture.Partitions, TransactionalIdExpirationMs = 60_000, RemoveExpiredTransactionalIdsIntervalMs = 10_000 };
        await using var f = new TransactionFixture(options: options);
        var idle = await f.InitAsync("idle");
        var open = await f.InitAsync("open", timeoutMs: 900_000);
        await f.Coordinator.AddPartitionsAsync("open", open.ProducerId, open.ProducerEpoch, TwoPartitions);

        await f.AdvanceAsync(TimeSpan.FromSeconds(50));
        Assert.Equal(ErrorCode.None, (await f.Coordinator.DescribeAsync("idle")).Error);
        await f.AdvanceAsync(TimeSpan.FromSeconds(20));
        Assert.Equal(ErrorCode.TransactionalIdNotFound, (await f.Coordinator.DescribeAsync("idle")).Error);
        Assert.Null(f.RecordsOf("idle")[^1]);

        // An open transaction never expires this way (its timeout aborts it first).
        Assert.Equal("Ongoing", (await f.Coordinator.DescribeAsync("open")).State);

        // The id comes back as new: a fresh producer id, epoch 0.
        var again = await f.InitAsync("idle");
        Assert.NotEqual(idle.ProducerId, again.ProducerId);
        Assert.Equal(0, again.ProducerEpoch);

        // And the tombstone is replayed at load.
        await using var restarted = f.Restart();
        Assert.Equal(again.ProducerId, (await restarted.Coordinator.DescribeAsync("idle")).ProducerId);
    }

    [Fact]
    public async Task Kip360_init_with_the_current_epoch_bumps_a_retry_with_the_previous_epoch_repeats_and_a_stale_one_is_fenced()
    {
        await using var f = new TransactionFixture();
        var p0 = await f.InitAsync("tx");
        var p1 = await f.InitAsync("tx", producerId: p0.ProducerId, epoch: p0.ProducerEpoch);
        Assert.Equal(new InitProducerIdResult(ErrorCode.None, p0.ProducerId, 1), p1);

        // The same request again (its response was lost): the same epoch, no second bump.
        Assert.Equal(p1, await f.InitAsync("tx", producerId: p0.ProducerId, epoch: p0.ProducerEpoch));

        var p2 = await f.InitAsync("tx", producerId: p1.ProducerId, epoch: p1.ProducerEpoch);
        Assert.Equal((short)2, p2.ProducerEpoch);
        Assert.Equal(ErrorCode.ProducerFenced, (await f.InitAsync("tx", producerId: p0.ProducerId, epoch: p0.ProducerEpoch)).Error);
        Assert.Equal(ErrorCode.ProducerFenced, (await f.InitAsync("tx", producerId: 99999, epoch: 0)).Error);

        // An unknown id named with a producer id (its id expired): a new producer at epoch 0.
        var fresh = await f.InitAsync("new-one", producerId: 12345, epoch: 3);
        Assert.Equal((ErrorCode.None, (short)0), (fresh.Error, fresh.ProducerEpoch));
    }

    [Fact]
    public async Task An_exhausted_epoch_rotates_to_a_new_producer_id()
    {
        var logs = Enumerable.Range(0, TransactionFixture.Partitions).Select(p => new MemoryCoordinatorLog($"__transaction_state-{p}")).ToArray();
        var log = logs[TransactionLog.PartitionFor("tx", TransactionFixture.Partitions)];
        log.Append(RecordBatchBuilder.Build([new RecordToWrite(TransactionLog.Key("tx"), TransactionLog.Value(new TransactionRecord(77, short.MaxValue - 1, 60_000, TransactionState.CompleteCommit, [], 5, 6)), 6)]));
        await using var f = new TransactionFixture(logs: logs);

        var rotated = await f.InitAsync("tx", producerId: 77, epoch: short.MaxValue - 1);
        Assert.NotEqual(77, rotated.ProducerId);
        Assert.Equal(0, rotated.ProducerEpoch);

        // KIP-360: the producer retrying (its response was lost) with its exhausted epoch is
        // recognised through the previous id and gets the same new id back.
        Assert.Equal(rotated, await f.InitAsync("tx", producerId: 77, epoch: short.MaxValue - 1));

        // Without a producer id named, an exhausted epoch rotates too.
        await using var g = new TransactionFixture(logs: [.. logs.Select(_ => new MemoryCoordinatorLog())]);
        g.LogOf("tx").Append(RecordBatchBuilder.Build([new RecordToWrite(TransactionLog.Key("tx"), TransactionLog.Value(new TransactionRecord(77, short.MaxValue - 1, 60_000, TransactionState.Empty, [], -1, 6)), 6)]));
        await g.Coordinator.DisposeAsync();
        await using var h = g.Restart();
        var fresh = await h.InitAsync("tx");
        Assert.Equal(0, fresh.ProducerEpoch);
        Assert.NotEqual(77, fresh.ProducerId);
    }

    [Fact]
    public async Task State_survives_a_restart()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        await f.Coordinator.DisposeAsync();

        await using var r = f.Restart();
        var d = await r.Coordinator.DescribeAsync("tx");
        Assert.Equal(("Ongoing", p.ProducerId, p.ProducerEpoch), (d.State, d.ProducerId, d.ProducerEpoch));
        Assert.Equal(ErrorCode.None, r.Coordinator.VerifyPartition("tx", p.ProducerId, p.ProducerEpoch, "orders", 1));
        Assert.Equal(ErrorCode.None, await r.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        await r.WaitForStateAsync("tx", TransactionState.CompleteCommit);
    }

    [Fact]
    public async Task A_crash_between_PrepareCommit_and_CompleteCommit_is_completed_when_the_partition_loads()
    {
        var markers = new RecordingMarkerWriter();
        markers.Hold(); // the markers never become durable before the "crash"
        var f = new TransactionFixture(markers: markers);
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        await f.Coordinator.DisposeAsync();
        Assert.Equal(TransactionState.PrepareCommit, f.RecordsOf("tx")[^1]!.State);

        var after = new RecordingMarkerWriter();
        await using var r = f.Restart(after);
        await r.WaitForStateAsync("tx", TransactionState.CompleteCommit);
        Assert.Equal(
            [(p.ProducerId, p.ProducerEpoch, ControlRecordType.Commit, "orders", 0), (p.ProducerId, p.ProducerEpoch, ControlRecordType.Commit, "orders", 1)],
            after.Snapshot().Select(w => (w.ProducerId, w.Epoch, w.Result, w.Topic, w.Partition)).OrderBy(w => w.Partition));
        Assert.Equal(TransactionState.CompleteCommit, r.RecordsOf("tx")[^1]!.State);
    }

    [Fact]
    public async Task A_crash_after_some_markers_writes_them_all_again_at_load_and_aborts_complete_too()
    {
        var markers = new RecordingMarkerWriter { Answer = (_, partition) => partition == 0 ? ErrorCode.None : ErrorCode.KafkaStorageError };
        var f = new TransactionFixture(markers: markers);
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions);
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: false));
        while (markers.Attempts < 2)
        {
            await Task.Delay(5);
            f.Time.Advance(TimeSpan.FromMilliseconds(100));
        }

        await f.Coordinator.DisposeAsync();
        Assert.Equal(TransactionState.PrepareAbort, f.RecordsOf("tx")[^1]!.State);

        var after = new RecordingMarkerWriter();
        await using var r = f.Restart(after);
        await r.WaitForStateAsync("tx", TransactionState.CompleteAbort);
        Assert.Equal([0, 1], after.Snapshot().Where(w => w.Result == ControlRecordType.Abort).Select(w => w.Partition).Order());
    }

    [Fact]
    public async Task Failed_markers_are_retried_and_a_deleted_partition_is_skipped()
    {
        var failures = 3;
        var markers = new RecordingMarkerWriter
        {
            Answer = (topic, _) => topic == "gone" ? ErrorCode.UnknownTopicOrPartition
                : topic == "flaky" && Interlocked.Decrement(ref failures) >= 0 ? ErrorCode.KafkaStorageError
                : ErrorCode.None,
        };
        await using var f = new TransactionFixture(markers: markers);
        var p = await f.InitAsync("tx");
        await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, [("gone", 0), ("flaky", 0), ("fine", 0)]);
        Assert.Equal(ErrorCode.None, await f.Coordinator.EndTransactionAsync("tx", p.ProducerId, p.ProducerEpoch, commit: true));
        await f.WaitForStateAsync("tx", TransactionState.CompleteCommit, advance: TimeSpan.FromMilliseconds(200));
        Assert.Equal(["fine", "flaky"], markers.Snapshot().Select(w => w.Topic).Order(StringComparer.Ordinal));
        Assert.True(markers.Attempts >= 4);
    }

    [Fact]
    public async Task A_write_that_fails_applies_nothing_and_answers_Kafkas_coordinator_error()
    {
        await using var f = new TransactionFixture();
        var p = await f.InitAsync("tx");
        f.LogOf("tx").FailAppends = true;
        Assert.Equal(ErrorCode.NotCoordinator, await f.Coordinator.AddPartitionsAsync("tx", p.ProducerId, p.ProducerEpoch, TwoPartitions));
        Assert.Equal(ErrorCode.NotCoordinator, (await f.InitAsync("tx")).Error);
        Assert.Equal("Empty", (await f.Coordinator.DescribeAsync("tx")).State);
        f.LogOf("tx").FailAppends = false;
        Assert.Equal((short)1, (await f.InitAsync("tx")).ProducerEpoch);
    }

    [Fact]
    public async Task ListTransactions_filters_by_state_producer_id_and_duration()
    {
        await using var f = new TransactionFixture();
        var a = await f.InitAsync("a");
        var b = await f.InitAsync("b");
        await f.Coordinator.AddPartitionsAsync("b", b.ProducerId, b.ProducerEpoch, TwoPartitions);
        await f.AdvanceAsync(TimeSpan.FromSeconds(30));
        var c = await f.InitAsync("c");
        await f.Coordinator.AddPartitionsAsync("c", c.ProducerId, c.ProducerEpoch, TwoPartitions);

        var (all, unknown) = await f.Coordinator.ListAsync([], []);
        Assert.Equal(["a", "b", "c"], all.Select(t => t.TransactionalId).Order(StringComparer.Ordinal));
        Assert.Empty(unknown);

        var (ongoing, bad) = await f.Coordinator.ListAsync([], ["Ongoing", "Bogus"]);
        Assert.Equal(["b", "c"], ongoing.Select(t => t.TransactionalId).Order(StringComparer.Ordinal));
        Assert.Equal(["Bogus"], bad);

        var (byId, _) = await f.Coordinator.ListAsync([a.ProducerId], []);
        Assert.Equal(new TransactionListing("a", a.ProducerId, "Empty"), Assert.Single(byId));

        // Running longer than 10 s: b (30 s); a has no transaction (start -1) and counts as long-running, as in Kafka.
        var (longRunning, _) = await f.Coordinator.ListAsync([], ["Ongoing"], durationMs: 10_000);
        Assert.Equal("b", Assert.Single(longRunning).TransactionalId);
    }

    private sealed class TopicsComparer : IEqualityComparer<List<(string Topic, IReadOnlyList<int> Partitions)>>
    {
        public bool Equals(List<(string Topic, IReadOnlyList<int> Partitions)>? x, List<(string Topic, IReadOnlyList<int> Partitions)>? y) =>
            x!.Count == y!.Count && x.Zip(y).All(p => p.First.Topic == p.Second.Topic && p.First.Partitions.SequenceEqual(p.Second.Partitions));

        public int GetHashCode(List<(string Topic, IReadOnlyList<int> Partitions)> obj) => obj.Count;
    }
}
