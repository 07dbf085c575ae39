using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>
/// The transaction APIs through the dispatcher, as a transactional producer and an admin client
/// drive them: FindCoordinator(transaction), InitProducerId with a transactional id,
/// AddPartitionsToTxn (client versions and the batched verify_only form), transactional Produce,
/// AddOffsetsToTxn, EndTxn, WriteTxnMarkers, DescribeTransactions and ListTransactions.
/// </summary>
public sealed class TransactionDispatchTests : IAsyncLifetime
{
    private const string Topic = "tx-events";
    private const short TransactionalBit = 0x10;
    private BrokerHarness _broker = null!;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 3, ReplicationFactor = 1 }],
            TimeoutMs = 1000,
        });
        Assert.All(created.Topics, t => Assert.Equal(0, t.ErrorCode));
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _broker.SendAsync<T>(key, version, request);

    /// <summary>InitProducerId v5 for <paramref name="id"/>: its producer id and epoch.</summary>
    internal static async Task<(long ProducerId, short Epoch)> InitAsync(BrokerHarness broker, string id, int timeoutMs = 60_000)
    {
        var init = await broker.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = id, TransactionTimeoutMs = timeoutMs, ProducerId = -1, ProducerEpoch = -1 });
        Assert.Equal(0, init.ErrorCode);
        return (init.ProducerId, init.ProducerEpoch);
    }

    /// <summary>AddPartitionsToTxn v3 of one partition; its error.</summary>
    internal static async Task<ErrorCode> AddAsync(BrokerHarness broker, string id, long producerId, short epoch, string topic, int partition)
    {
        var added = await broker.SendAsync<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 3, new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = id,
            V3AndBelowProducerId = producerId,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = topic, Partitions = [partition] }],
        });
        return (ErrorCode)added.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode;
    }

    private static byte[] TransactionalBatch(long producerId, short epoch, int sequence, string value) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())], producerId: producerId, producerEpoch: epoch, baseSequence: sequence, attributes: TransactionalBit);

    private async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(short version, string? transactionalId, int partition, byte[] batch)
    {
        var produced = await Send<ProduceResponse>(ApiKey.Produce, version, new ProduceRequest
        {
            TransactionalId = transactionalId,
            Acks = -1,
            TimeoutMs = 1000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        });
        return produced.Responses.Single().PartitionResponses.Single();
    }

    private async Task<DescribeTransactionsResponse.TransactionStateData> DescribeAsync(string id) =>
        (await Send<DescribeTransactionsResponse>(ApiKey.DescribeTransactions, 0, new DescribeTransactionsRequest { TransactionalIds = [id] })).TransactionStates.Single();

    private async Task WaitForStateAsync(string id, string state)
    {
        for (var i = 0; i < 500; i++)
        {
            if ((await DescribeAsync(id)).TransactionState == state)
            {
                return;
            }

            await Task.Delay(10);
        }

        Assert.Fail($"{id} never reached {state}: {(await DescribeAsync(id)).TransactionState}");
    }

    /// <summary>Every batch of a partition, read from its log.</summary>
    private List<RecordBatch> Batches(string topic, int partition)
    {
        var state = _broker.Broker.State;
        var log = state.Topics.LogOf(state.Topics.Find(topic)!.Partition(partition)!)!;
        var bytes = log.Read(log.LogStartOffset, 1 << 20, minOneBatch: true, log.LogEndOffset);
        var list = new List<RecordBatch>();
        var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
        while (batches.MoveNext())
        {
            list.Add(new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength)));
        }

        return list;
    }

    private static (byte[] Key, byte[] Value) OnlyRecord(RecordBatch batch)
    {
        var records = new List<(byte[], byte[])>();
        foreach (var r in batch.GetRecords())
        {
            records.Add((r.Key!.Value.ToArray(), r.Value!.Value.ToArray()));
        }

        return Assert.Single(records);
    }

    [Fact]
    [Covers(ApiKey.FindCoordinator)]
    public async Task FindCoordinator_names_this_broker_for_a_transactional_id_and_creates_transaction_state()
    {
        var v0 = await Send<FindCoordinatorResponse>(ApiKey.FindCoordinator, 1, new FindCoordinatorRequest { Key = "tx-1", KeyType = 1 });
        Assert.Equal((0, 1, "broker.test", 9092), (v0.ErrorCode, v0.NodeId, v0.Host, v0.Port));
        var v4 = await Send<FindCoordinatorResponse>(ApiKey.FindCoordinator, 6, new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = ["tx-1", "tx-2"] });
        Assert.All(v4.Coordinators, c => Assert.Equal((0, 1), (c.ErrorCode, c.NodeId)));
        var topic = _broker.Broker.State.Topics.Find("__transaction_state")!;
        Assert.Single(topic.Partitions);
        Assert.Equal("compact", _broker.Broker.State.Topics.Find("__transaction_state")!.Partition(0)!.Log!.Options.Compact ? "compact" : "delete");
    }

    [Fact]
    [Covers(ApiKey.InitProducerId)]
    public async Task InitProducerId_with_a_transactional_id_bumps_the_epoch_and_answers_fencing_by_version()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-init");
        Assert.Equal(0, epoch);
        var again = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 0, new InitProducerIdRequest { TransactionalId = "tx-init", TransactionTimeoutMs = 60_000 });
        Assert.Equal((0, pid, (short)1), (again.ErrorCode, again.ProducerId, again.ProducerEpoch));

        // KIP-360 with a stale epoch: PRODUCER_FENCED from v4, INVALID_PRODUCER_EPOCH before.
        var v3 = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 3, new InitProducerIdRequest { TransactionalId = "tx-init", TransactionTimeoutMs = 60_000, ProducerId = 424242, ProducerEpoch = 0 });
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, v3.ErrorCode);
        var v5 = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = "tx-init", TransactionTimeoutMs = 60_000, ProducerId = 424242, ProducerEpoch = 0 });
        Assert.Equal((short)ErrorCode.ProducerFenced, v5.ErrorCode);

        var tooLong = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = "tx-init", TransactionTimeoutMs = 900_001, ProducerId = -1, ProducerEpoch = -1 });
        Assert.Equal(((short)ErrorCode.InvalidTransactionTimeout, -1L, (short)-1), (tooLong.ErrorCode, tooLong.ProducerId, tooLong.ProducerEpoch));
        var half = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = "tx-init", TransactionTimeoutMs = 60_000, ProducerId = pid, ProducerEpoch = -1 });
        Assert.Equal((short)ErrorCode.InvalidRequest, half.ErrorCode);
    }

    [Fact]
    [Covers(ApiKey.AddPartitionsToTxn)]
    [Covers(ApiKey.EndTxn)]
    [Covers(ApiKey.Produce)]
    public async Task A_transactional_batch_is_appended_only_to_a_partition_added_to_the_transaction_and_commit_writes_markers()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-flow");

        // Not added yet: INVALID_TXN_STATE before Produce v11, TRANSACTION_ABORTABLE from v11 (KIP-890).
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await ProduceAsync(10, "tx-flow", 0, TransactionalBatch(pid, epoch, 0, "early"))).ErrorCode);
        Assert.Equal((short)ErrorCode.TransactionAbortable, (await ProduceAsync(11, "tx-flow", 0, TransactionalBatch(pid, epoch, 0, "early"))).ErrorCode);
        Assert.Empty(Batches(Topic, 0));

        // Transactional records need a transactional id in the request.
        Assert.Equal((short)ErrorCode.TransactionalIdAuthorizationFailed, (await ProduceAsync(11, null, 0, TransactionalBatch(pid, epoch, 0, "anonymous"))).ErrorCode);

        Assert.Equal(ErrorCode.None, await AddAsync(_broker, "tx-flow", pid, epoch, Topic, 0));
        var v0 = await Send<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 0, new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tx-flow",
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = Topic, Partitions = [1] }],
        });
        Assert.Equal(0, v0.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode);

        var first = await ProduceAsync(11, "tx-flow", 0, TransactionalBatch(pid, epoch, 0, "a"));
        Assert.Equal((0, 0L), (first.ErrorCode, first.BaseOffset));
        Assert.Equal(0, (await ProduceAsync(9, "tx-flow", 1, TransactionalBatch(pid, epoch, 0, "b"))).ErrorCode);

        // A stale epoch is INVALID_PRODUCER_EPOCH on the produce path.
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await ProduceAsync(11, "tx-flow", 0, TransactionalBatch(pid, (short)(epoch - 1), 1, "old"))).ErrorCode);

        var end = await Send<EndTxnResponse>(ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = "tx-flow", ProducerId = pid, ProducerEpoch = epoch, Committed = true });
        Assert.Equal(0, end.ErrorCode);
        await WaitForStateAsync("tx-flow", "CompleteCommit");

        foreach (var partition in new[] { 0, 1 })
        {
            var marker = Batches(Topic, partition)[^1];
            Assert.True(marker.IsControl && marker.IsTransactional);
            Assert.Equal((pid, epoch), (marker.ProducerId, marker.ProducerEpoch));
            Assert.Equal(ControlRecordType.Commit, ControlRecordBatch.TypeOf(OnlyRecord(marker).Key));
        }

        Assert.Empty(Batches(Topic, 2));

        // After the commit the partitions are no longer in a transaction: a late batch is refused.
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await ProduceAsync(10, "tx-flow", 0, TransactionalBatch(pid, epoch, 1, "late"))).ErrorCode);

        // EndTxn again: None (the retry of a commit); an abort now: INVALID_TXN_STATE; at v0 a fenced epoch is INVALID_PRODUCER_EPOCH.
        Assert.Equal(0, (await Send<EndTxnResponse>(ApiKey.EndTxn, 0, new EndTxnRequest { TransactionalId = "tx-flow", ProducerId = pid, ProducerEpoch = epoch, Committed = true })).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTxnState, (await Send<EndTxnResponse>(ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = "tx-flow", ProducerId = pid, ProducerEpoch = epoch, Committed = false })).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await Send<EndTxnResponse>(ApiKey.EndTxn, 1, new EndTxnRequest { TransactionalId = "tx-flow", ProducerId = pid, ProducerEpoch = 9, Committed = true })).ErrorCode);
        Assert.Equal((short)ErrorCode.ProducerFenced, (await Send<EndTxnResponse>(ApiKey.EndTxn, 2, new EndTxnRequest { TransactionalId = "tx-flow", ProducerId = pid, ProducerEpoch = 9, Committed = true })).ErrorCode);
    }

    [Fact]
    [Covers(ApiKey.AddPartitionsToTxn)]
    public async Task AddPartitionsToTxn_adds_nothing_when_one_partition_is_refused()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-refused");
        var response = await Send<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 3, new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tx-refused",
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = Topic, Partitions = [0, 7] }, new() { Name = "__consumer_offsets", Partitions = [0] }],
        });
        var errors = response.ResultsByTopicV3AndBelow.SelectMany(t => t.ResultsByPartition.Select(p => ($"{t.Name}-{p.PartitionIndex}", (ErrorCode)p.PartitionErrorCode))).Order().ToList();
        Assert.Equal(
            [("__consumer_offsets-0", ErrorCode.TopicAuthorizationFailed), ($"{Topic}-0", ErrorCode.OperationNotAttempted), ($"{Topic}-7", ErrorCode.UnknownTopicOrPartition)],
            errors);
        Assert.Equal("Empty", (await DescribeAsync("tx-refused")).TransactionState);

        // An unknown producer id: INVALID_PRODUCER_ID_MAPPING; a stale epoch at v1: INVALID_PRODUCER_EPOCH.
        Assert.Equal(ErrorCode.InvalidProducerIdMapping, await AddAsync(_broker, "tx-refused", 424242, epoch, Topic, 0));
        var v1 = await Send<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 1, new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = "tx-refused",
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = 5,
            V3AndBelowTopics = [new() { Name = Topic, Partitions = [0] }],
        });
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, v1.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode);
    }

    [Fact]
    [Covers(ApiKey.AddPartitionsToTxn)]
    public async Task AddPartitionsToTxn_v4_adds_a_batch_of_transactions_and_verify_only_checks_without_adding()
    {
        var a = await InitAsync(_broker, "tx-v4-a");
        var b = await InitAsync(_broker, "tx-v4-b");
        var added = await Send<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 4, new AddPartitionsToTxnRequest
        {
            Transactions =
            [
                new() { TransactionalId = "tx-v4-a", ProducerId = a.ProducerId, ProducerEpoch = a.Epoch, Topics = [new() { Name = Topic, Partitions = [0] }] },
                new() { TransactionalId = "tx-v4-b", ProducerId = b.ProducerId, ProducerEpoch = b.Epoch, VerifyOnly = true, Topics = [new() { Name = Topic, Partitions = [0] }] },
            ],
        });
        Assert.Equal(0, added.ErrorCode);
        var byId = added.ResultsByTransaction.ToDictionary(r => r.TransactionalId, r => (ErrorCode)r.TopicResults.Single().ResultsByPartition.Single().PartitionErrorCode);
        Assert.Equal(ErrorCode.None, byId["tx-v4-a"]);
        Assert.Equal(ErrorCode.TransactionAbortable, byId["tx-v4-b"]);
        Assert.Equal("Ongoing", (await DescribeAsync("tx-v4-a")).TransactionState);
        Assert.Equal("Empty", (await DescribeAsync("tx-v4-b")).TransactionState);

        var verified = await Send<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 4, new AddPartitionsToTxnRequest
        {
            Transactions = [new() { TransactionalId = "tx-v4-a", ProducerId = a.ProducerId, ProducerEpoch = a.Epoch, VerifyOnly = true, Topics = [new() { Name = Topic, Partitions = [0, 1] }] }],
        });
        Assert.Equal(
            [(0, ErrorCode.None), (1, ErrorCode.TransactionAbortable)],
            verified.ResultsByTransaction.Single().TopicResults.Single().ResultsByPartition.Select(p => (p.PartitionIndex, (ErrorCode)p.PartitionErrorCode)).Order());
    }

    [Fact]
    [Covers(ApiKey.AddOffsetsToTxn)]
    public async Task AddOffsetsToTxn_adds_the_groups_consumer_offsets_partition()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-offsets");
        var added = await Send<AddOffsetsToTxnResponse>(ApiKey.AddOffsetsToTxn, 4, new AddOffsetsToTxnRequest { TransactionalId = "tx-offsets", ProducerId = pid, ProducerEpoch = epoch, GroupId = "g" });
        Assert.Equal(0, added.ErrorCode);
        var described = await DescribeAsync("tx-offsets");
        Assert.Equal(("Ongoing", "__consumer_offsets", 0), (described.TransactionState, described.Topics.Single().Topic, described.Topics.Single().Partitions.Single()));

        var stale = await Send<AddOffsetsToTxnResponse>(ApiKey.AddOffsetsToTxn, 0, new AddOffsetsToTxnRequest { TransactionalId = "tx-offsets", ProducerId = pid, ProducerEpoch = 7, GroupId = "g" });
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, stale.ErrorCode);
    }

    [Fact]
    [Covers(ApiKey.WriteTxnMarkers)]
    public async Task WriteTxnMarkers_writes_the_markers_asked_for_and_answers_per_partition()
    {
        var written = await Send<WriteTxnMarkersResponse>(ApiKey.WriteTxnMarkers, 1, new WriteTxnMarkersRequest
        {
            Markers = [new() { ProducerId = 777, ProducerEpoch = 3, TransactionResult = false, CoordinatorEpoch = 5, Topics = [new() { Name = Topic, PartitionIndexes = [2] }, new() { Name = "nope", PartitionIndexes = [0] }] }],
        });
        var result = written.Markers.Single();
        Assert.Equal(777, result.ProducerId);
        Assert.Equal(
            [("nope", ErrorCode.UnknownTopicOrPartition), (Topic, ErrorCode.None)],
            result.Topics.Select(t => (t.Name, (ErrorCode)t.Partitions.Single().ErrorCode)).Order());
        var marker = Batches(Topic, 2).Single();
        Assert.True(marker.IsControl);
        Assert.Equal((777L, (short)3), (marker.ProducerId, marker.ProducerEpoch));
        var (key, value) = OnlyRecord(marker);
        Assert.Equal(ControlRecordType.Abort, ControlRecordBatch.TypeOf(key));
        Assert.Equal(5, ControlRecordBatch.CoordinatorEpochOf(value));
    }

    [Fact]
    [Covers(ApiKey.DescribeTransactions)]
    [Covers(ApiKey.ListTransactions)]
    public async Task DescribeTransactions_and_ListTransactions_report_state_partitions_and_filters()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-listed", timeoutMs: 30_000);
        Assert.Equal(ErrorCode.None, await AddAsync(_broker, "tx-listed", pid, epoch, Topic, 2));
        await InitAsync(_broker, "tx-idle");

        var d = await DescribeAsync("tx-listed");
        Assert.Equal((0, "Ongoing", pid, epoch, 30_000), (d.ErrorCode, d.TransactionState, d.ProducerId, d.ProducerEpoch, d.TransactionTimeoutMs));
        Assert.True(d.TransactionStartTimeMs > 0);
        Assert.Equal((Topic, 2), (d.Topics.Single().Topic, d.Topics.Single().Partitions.Single()));
        Assert.Equal((short)ErrorCode.TransactionalIdNotFound, (await DescribeAsync("nobody")).ErrorCode);

        var all = await Send<ListTransactionsResponse>(ApiKey.ListTransactions, 0, new ListTransactionsRequest { StateFilters = [], ProducerIdFilters = [] });
        Assert.Equal(["tx-idle", "tx-listed"], all.TransactionStates.Select(t => t.TransactionalId).Order(StringComparer.Ordinal));

        var ongoing = await Send<ListTransactionsResponse>(ApiKey.ListTransactions, 1, new ListTransactionsRequest { StateFilters = ["Ongoing", "Nonsense"], ProducerIdFilters = [pid], DurationFilter = -1 });
        Assert.Equal(("tx-listed", pid, "Ongoing"), (ongoing.TransactionStates.Single().TransactionalId, ongoing.TransactionStates.Single().ProducerId, ongoing.TransactionStates.Single().TransactionState));
        Assert.Equal(["Nonsense"], ongoing.UnknownStateFilters);

        // v1's duration filter: nothing has run for an hour yet.
        var old = await Send<ListTransactionsResponse>(ApiKey.ListTransactions, 1, new ListTransactionsRequest { StateFilters = ["Ongoing"], ProducerIdFilters = [], DurationFilter = 3_600_000 });
        Assert.Empty(old.TransactionStates);
    }

    [Fact]
    public async Task A_plain_batch_of_a_producer_whose_transaction_is_open_is_refused_INVALID_TXN_STATE()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-plain");
        Assert.Equal(ErrorCode.None, await AddAsync(_broker, "tx-plain", pid, epoch, Topic, 2));
        Assert.Equal(0, (await ProduceAsync(11, "tx-plain", 2, TransactionalBatch(pid, epoch, 0, "in"))).ErrorCode);

        // The same producer, next sequence, without the transactional bit: the log refuses it, and
        // the answer says so rather than reporting a write that did not happen.
        var plain = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("out"), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())], producerId: pid, producerEpoch: epoch, baseSequence: 1);
        var refused = await ProduceAsync(11, null, 2, plain);
        Assert.Equal((short)ErrorCode.InvalidTxnState, refused.ErrorCode);
        Assert.Single(Batches(Topic, 2));
    }

    [Fact]
    public async Task Init_during_an_open_transaction_aborts_it_and_the_retry_gets_a_bumped_epoch()
    {
        var (pid, epoch) = await InitAsync(_broker, "tx-zombie");
        Assert.Equal(ErrorCode.None, await AddAsync(_broker, "tx-zombie", pid, epoch, Topic, 1));
        Assert.Equal(0, (await ProduceAsync(11, "tx-zombie", 1, TransactionalBatch(pid, epoch, 0, "zombie"))).ErrorCode);

        var concurrent = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = "tx-zombie", TransactionTimeoutMs = 60_000, ProducerId = -1, ProducerEpoch = -1 });
        Assert.Equal((short)ErrorCode.ConcurrentTransactions, concurrent.ErrorCode);
        await WaitForStateAsync("tx-zombie", "CompleteAbort");
        var marker = Batches(Topic, 1)[^1];
        Assert.Equal((true, (short)(epoch + 1)), (marker.IsControl, marker.ProducerEpoch));
        Assert.Equal(ControlRecordType.Abort, ControlRecordBatch.TypeOf(OnlyRecord(marker).Key));

        var (samePid, newEpoch) = await InitAsync(_broker, "tx-zombie");
        Assert.Equal((pid, (short)(epoch + 2)), (samePid, newEpoch));
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await ProduceAsync(11, "tx-zombie", 1, TransactionalBatch(pid, epoch, 1, "zombie again"))).ErrorCode);
    }
}
