using System.Text;
using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using ApiKey = Moldau.Protocol.ApiKey;
using ErrorCode = Moldau.Protocol.ErrorCode;

namespace Moldau.IntegrationTests;

/// <summary>
/// The Java client's transactional sequence replayed over the protocol at its versions (the Java
/// client can't be installed here; its TransactionManager sends these): FindCoordinator v6 for the
/// transactional id, InitProducerId v5, AddPartitionsToTxn v3 (its last client version), Produce
/// v11 with the transactional id, AddOffsetsToTxn v4, EndTxn v4, and the admin client's
/// DescribeTransactions v0 and ListTransactions v1. And kill -9 while transactions commit: after
/// the restart no transaction is left half-ended and no partition is left with a hanging one.
/// </summary>
public sealed class TransactionSequenceTests
{
    private const short TransactionalBit = 0x10;

    private static byte[] Batch(long producerId, short epoch, int sequence, params string[] values) =>
        RecordBatchBuilder.Build(
            [.. values.Select(v => new RecordToWrite(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes(v), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds()))],
            producerId: producerId,
            producerEpoch: epoch,
            baseSequence: sequence,
            attributes: TransactionalBit);

    private static async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(KafkaTestClient client, string transactionalId, string topic, int partition, byte[] batch) =>
        (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            TransactionalId = transactionalId,
            Acks = -1,
            TimeoutMs = 30000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        })).Responses.Single().PartitionResponses.Single();

    private static async Task<string> StateAsync(KafkaTestClient client, string transactionalId) =>
        (await DescribedAsync(client, transactionalId)).TransactionState;

    private static async Task<DescribeTransactionsResponse.TransactionStateData> DescribedAsync(KafkaTestClient client, string transactionalId) =>
        (await client.SendAsync<DescribeTransactionsResponse>(ApiKey.DescribeTransactions, 0, new DescribeTransactionsRequest { TransactionalIds = [transactionalId] })).TransactionStates.Single();

    private static async Task WaitForStateAsync(KafkaTestClient client, string transactionalId, string state)
    {
        for (var i = 0; i < 600 && await StateAsync(client, transactionalId) != state; i++)
        {
            await Task.Delay(50);
        }

        Assert.Equal(state, await StateAsync(client, transactionalId));
    }

    /// <summary>Every batch of a partition, read_uncommitted, markers included.</summary>
    private static async Task<List<RecordBatch>> BatchesAsync(KafkaTestClient client, string topic, int partition)
    {
        var list = new List<RecordBatch>();
        long next = 0, highWatermark;
        do
        {
            var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
            {
                MaxBytes = 1 << 24,
                SessionEpoch = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = next, PartitionMaxBytes = 1 << 24 }] }],
            });
            var p = fetch.Responses.Single().Partitions.Single();
            Assert.Equal(0, p.ErrorCode);
            highWatermark = p.HighWatermark;
            var bytes = p.Records!.Value;
            var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
            while (batches.MoveNext())
            {
                var batch = new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength).ToArray());
                list.Add(batch);
                next = batch.LastOffset + 1;
            }
        }
        while (next < highWatermark);

        return list;
    }

    [Fact]
    public async Task TheJavaClientsTransactionalSequenceCommitsAndAborts()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["transaction.state.log.num.partitions"] = "3" });
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var topic = "java-tx";
        const string id = "java-txn";

        var versions = await client.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 4, new ApiVersionsRequest { ClientSoftwareName = "apache-kafka-java", ClientSoftwareVersion = "4.0.0" });
        var served = versions.ApiKeys.ToDictionary(k => (ApiKey)k.ApiKey, k => (k.MinVersion, k.MaxVersion));
        Assert.Equal((0, 4), ((int)served[ApiKey.AddPartitionsToTxn].MinVersion, (int)served[ApiKey.AddPartitionsToTxn].MaxVersion));
        Assert.Equal(4, served[ApiKey.EndTxn].MaxVersion);
        Assert.Equal(4, served[ApiKey.AddOffsetsToTxn].MaxVersion);
        Assert.Equal(1, served[ApiKey.WriteTxnMarkers].MaxVersion);
        Assert.Equal(0, served[ApiKey.DescribeTransactions].MaxVersion);
        Assert.Equal(1, served[ApiKey.ListTransactions].MaxVersion);

        var coordinator = await client.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 6, new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = [id] });
        Assert.Equal((0, 1), (coordinator.Coordinators.Single().ErrorCode, coordinator.Coordinators.Single().NodeId));

        var init = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = id, TransactionTimeoutMs = 60000, ProducerId = -1, ProducerEpoch = -1 });
        Assert.Equal((0, (short)0), (init.ErrorCode, init.ProducerEpoch));
        var (pid, epoch) = (init.ProducerId, init.ProducerEpoch);

        var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = true });
        Assert.Equal(0, metadata.Topics.Single().ErrorCode);

        // Transaction 1: two records, committed.
        var add = await client.SendAsync<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 3, new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = id,
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = topic, Partitions = [0] }],
        });
        Assert.Equal(0, add.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode);
        var first = await ProduceAsync(client, id, topic, 0, Batch(pid, epoch, 0, "a", "b"));
        Assert.Equal((0, 0L), ((int)first.ErrorCode, first.BaseOffset));
        var second = await ProduceAsync(client, id, topic, 0, Batch(pid, epoch, 2, "c"));
        Assert.Equal((0, 2L), ((int)second.ErrorCode, second.BaseOffset));
        var end = await client.SendAsync<EndTxnResponse>(ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = id, ProducerId = pid, ProducerEpoch = epoch, Committed = true });
        Assert.Equal(0, end.ErrorCode);
        await WaitForStateAsync(client, id, "CompleteCommit");

        // Transaction 2: one record, aborted. AddPartitionsToTxn right after the commit may meet
        // CONCURRENT_TRANSACTIONS, which the Java client retries; here the commit is complete.
        add = await client.SendAsync<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 3, new AddPartitionsToTxnRequest
        {
            V3AndBelowTransactionalId = id,
            V3AndBelowProducerId = pid,
            V3AndBelowProducerEpoch = epoch,
            V3AndBelowTopics = [new() { Name = topic, Partitions = [0] }],
        });
        Assert.Equal(0, add.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode);
        Assert.Equal(0, (await ProduceAsync(client, id, topic, 0, Batch(pid, epoch, 3, "d"))).ErrorCode);
        var listed = await client.SendAsync<ListTransactionsResponse>(ApiKey.ListTransactions, 1, new ListTransactionsRequest { StateFilters = [], ProducerIdFilters = [], DurationFilter = -1 });
        Assert.Equal((id, pid, "Ongoing"), (listed.TransactionStates.Single().TransactionalId, listed.TransactionStates.Single().ProducerId, listed.TransactionStates.Single().TransactionState));
        end = await client.SendAsync<EndTxnResponse>(ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = id, ProducerId = pid, ProducerEpoch = epoch, Committed = false });
        Assert.Equal(0, end.ErrorCode);
        await WaitForStateAsync(client, id, "CompleteAbort");

        var batches = await BatchesAsync(client, topic, 0);
        Assert.Equal(
            [(0L, false, (ControlRecordType?)null), (2, false, null), (3, true, ControlRecordType.Commit), (4, false, null), (5, true, ControlRecordType.Abort)],
            batches.Select(b => (b.BaseOffset, b.IsControl, b.IsControl ? MarkerType(b) : null)));
        Assert.All(batches, b => Assert.True(b.IsTransactional && b.ProducerId == pid && b.ProducerEpoch == epoch));
    }

    [Fact]
    public async Task TheJavaClientsExactlyOnceSequenceCommitsOffsetsWithTheTransaction()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["transaction.state.log.num.partitions"] = "3", ["group.initial.rebalance.delay.ms"] = "0" });
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        const string id = "streams-task-0_0";
        const string group = "streams-app";
        var init = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = id, TransactionTimeoutMs = 10000, ProducerId = -1, ProducerEpoch = -1 });
        var (pid, epoch) = (init.ProducerId, init.ProducerEpoch);
        await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "eos-out" }, new() { Name = "eos-in" }], AllowAutoTopicCreation = true });

        // An aborted transaction, then a committed one with the input offsets in it.
        foreach (var (commit, sequence) in new[] { (false, 0), (true, 1) })
        {
            var add = await client.SendAsync<AddPartitionsToTxnResponse>(ApiKey.AddPartitionsToTxn, 3, new AddPartitionsToTxnRequest
            {
                V3AndBelowTransactionalId = id,
                V3AndBelowProducerId = pid,
                V3AndBelowProducerEpoch = epoch,
                V3AndBelowTopics = [new() { Name = "eos-out", Partitions = [0] }],
            });
            Assert.Equal(0, add.ResultsByTopicV3AndBelow.Single().ResultsByPartition.Single().PartitionErrorCode);
            Assert.Equal(0, (await ProduceAsync(client, id, "eos-out", 0, Batch(pid, epoch, sequence, commit ? "kept" : "dropped"))).ErrorCode);
            var coordinator = await client.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 6, new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = [group] });
            Assert.Equal(0, coordinator.Coordinators.Single().ErrorCode);
            var offsets = await client.SendAsync<AddOffsetsToTxnResponse>(ApiKey.AddOffsetsToTxn, 4, new AddOffsetsToTxnRequest { TransactionalId = id, ProducerId = pid, ProducerEpoch = epoch, GroupId = group });
            Assert.Equal(0, offsets.ErrorCode);
            var txnCommit = await client.SendAsync<TxnOffsetCommitResponse>(ApiKey.TxnOffsetCommit, 4, new TxnOffsetCommitRequest
            {
                TransactionalId = id,
                GroupId = group,
                ProducerId = pid,
                ProducerEpoch = epoch,
                GenerationId = -1,
                MemberId = string.Empty,
                Topics = [new() { Name = "eos-in", Partitions = [new() { PartitionIndex = 0, CommittedOffset = commit ? 10 : 5, CommittedLeaderEpoch = -1 }] }],
            });
            Assert.Equal(0, txnCommit.Topics.Single().Partitions.Single().ErrorCode);
            var end = await client.SendAsync<EndTxnResponse>(ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = id, ProducerId = pid, ProducerEpoch = epoch, Committed = commit });
            Assert.Equal(0, end.ErrorCode);
            await WaitForStateAsync(client, id, commit ? "CompleteCommit" : "CompleteAbort");
        }

        var fetched = await client.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest
        {
            RequireStable = true,
            Groups = [new() { GroupId = group, Topics = [new() { Name = "eos-in", PartitionIndexes = [0] }] }],
        });
        Assert.Equal(10, fetched.Groups.Single().Topics.Single().Partitions.Single().CommittedOffset);

        var readCommitted = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            IsolationLevel = 1,
            SessionEpoch = -1,
            Topics = [new() { Topic = "eos-out", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        var p = readCommitted.Responses.Single().Partitions.Single();
        Assert.Equal((pid, 0L), (p.AbortedTransactions!.Single().ProducerId, p.AbortedTransactions!.Single().FirstOffset));
        Assert.Equal(p.HighWatermark, p.LastStableOffset);
    }

    private static ControlRecordType? MarkerType(RecordBatch batch)
    {
        foreach (var r in batch.GetRecords())
        {
            return ControlRecordBatch.TypeOf(r.Key!.Value.Span);
        }

        return null;
    }

    /// <summary>
    /// kill -9 while a Confluent.Kafka producer commits transactions in a loop, at a random moment
    /// (before, during or after an EndTxn, between markers). After each restart: no transaction is
    /// left prepared (the coordinator completes it at load), and once a new producer of the same
    /// transactional id has initialized (aborting whatever was open) every partition ends with a
    /// marker: no hanging transaction. MOLDAU_TXN_CRASH_CYCLES sets the cycles (5 by default).
    /// </summary>
    [Fact]
    public async Task KillNineWhileTransactionsCommitLeavesNoTransactionHalfEnded()
    {
        Librdkafka.EnsureLoaded();
        var cycles = int.TryParse(Environment.GetEnvironmentVariable("MOLDAU_TXN_CRASH_CYCLES"), out var n) ? n : 5;
        var random = new Random(4321);
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["transaction.state.log.num.partitions"] = "3", ["num.partitions"] = "3" });
        const string topic = "txn-crash";
        const string id = "txn-crash-producer";
        await using (var setup = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var created = await setup.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = true });
            Assert.Equal(3, created.Topics.Single().Partitions.Count);
        }

        var commits = 0;
        for (var cycle = 0; cycle < cycles; cycle++)
        {
            using var stop = new CancellationTokenSource();
            var loop = Task.Run(() => CommitUntilKilled(broker.BootstrapServers, topic, id, stop.Token));
            await Task.Delay(random.Next(300, 1500));
            await broker.KillAsync();
            await stop.CancelAsync();
            await loop;
            await broker.RestartAsync();

            await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
            // Until the coordinator has loaded, DescribeTransactions answers an error with no state;
            // an id never initialized before the kill stays TRANSACTIONAL_ID_NOT_FOUND.
            var deadline = DateTime.UtcNow.AddSeconds(30);
            DescribeTransactionsResponse.TransactionStateData described;
            while (((described = await DescribedAsync(client, id)).TransactionState is "PrepareCommit" or "PrepareAbort"
                    || (described.ErrorCode != 0 && described.ErrorCode != (short)ErrorCode.TransactionalIdNotFound))
                && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }

            var state = described.ErrorCode == (short)ErrorCode.TransactionalIdNotFound ? "unknown" : described.TransactionState;
            Assert.True(state is "unknown" or "Empty" or "Ongoing" or "CompleteCommit" or "CompleteAbort", $"cycle {cycle}: state '{state}', error {described.ErrorCode}");

            // A new producer of the id aborts what was open; then every partition ends with a marker.
            using (var successor = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, TransactionalId = id }).Build())
            {
                successor.InitTransactions(TimeSpan.FromSeconds(30));
            }

            for (var partition = 0; partition < 3; partition++)
            {
                var batches = await BatchesAsync(client, topic, partition);
                if (batches.Count > 0 && !batches[^1].IsControl)
                {
                    Assert.Fail($"cycle {cycle}: {topic}-{partition} ends with a data batch at {batches[^1].BaseOffset}: a hanging transaction");
                }
                commits += batches.Count(b => b.IsControl && MarkerType(b) == ControlRecordType.Commit);
            }
        }

        // The kills came while transactions were being committed, not before the first one.
        Assert.True(commits > 0, "no transaction committed before the kills");
    }

    private static void CommitUntilKilled(string bootstrap, string topic, string id, CancellationToken stop)
    {
        try
        {
            using var producer = new ProducerBuilder<string, string>(new ProducerConfig
            {
                BootstrapServers = bootstrap,
                TransactionalId = id,
                LingerMs = 1,
                MessageTimeoutMs = 5000,
                SocketTimeoutMs = 2000,
            }).Build();
            producer.InitTransactions(TimeSpan.FromSeconds(10));
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                producer.BeginTransaction();
                for (var p = 0; p < 3; p++)
                {
                    producer.Produce(new TopicPartition(topic, p), new Message<string, string> { Key = $"k{i}", Value = $"v{i++}" });
                }

                producer.CommitTransaction(TimeSpan.FromSeconds(5));
            }
        }
        catch (KafkaException)
        {
            // The broker went away mid-transaction: expected.
        }
    }
}
