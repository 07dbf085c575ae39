using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol.Messages;
using ApiKey = Moldau.Protocol.ApiKey;

namespace Moldau.IntegrationTests;

/// <summary>A broker whose transaction coordinator looks for timed-out transactions every 500 ms.</summary>
public sealed class TransactionBroker : IAsyncLifetime
{
    private BrokerProcess? _broker;

    public BrokerProcess Broker => _broker ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync() =>
        _broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["num.partitions"] = "1",
            ["group.initial.rebalance.delay.ms"] = "0",
            ["transaction.state.log.num.partitions"] = "5",
            ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "500",
        });

    public async Task DisposeAsync()
    {
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }
    }
}

/// <summary>
/// Confluent.Kafka 2.16 (librdkafka 2.16) transactional producers against a Moldau process:
/// InitTransactions, commit and abort over several partitions (the markers take an offset each),
/// zombie fencing by a second producer of the same transactional.id, a transaction left open until
/// the coordinator aborts it, and the coordinator's state seen through DescribeTransactions and
/// ListTransactions (Confluent.Kafka's admin client has neither, so they go over the protocol).
/// </summary>
public sealed class TransactionTests(TransactionBroker fixture) : IClassFixture<TransactionBroker>
{
    private string Bootstrap => fixture.Broker.BootstrapServers;

    private static string NewName(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private async Task CreateTopicAsync(string topic, int partitions)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
    }

    private IProducer<string, string> TransactionalProducer(string transactionalId, int transactionTimeoutMs = 60_000) =>
        new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = Bootstrap,
            TransactionalId = transactionalId,
            TransactionTimeoutMs = transactionTimeoutMs,
            LingerMs = 5,
        }).Build();

    private static void ProduceTo(IProducer<string, string> producer, string topic, int partitions, int perPartition, string tag)
    {
        for (var i = 0; i < perPartition; i++)
        {
            for (var p = 0; p < partitions; p++)
            {
                producer.Produce(new TopicPartition(topic, p), new Message<string, string> { Key = $"{tag}-{p}-{i}", Value = tag });
            }
        }

        Assert.Equal(0, producer.Flush(Timeout));
    }

    /// <summary>What a read_uncommitted (or read_committed) consumer gets from each partition, from the start to the high watermark.</summary>
    private List<(int Partition, string Key, string Value)> ReadAll(string topic, int partitions, IsolationLevel isolation)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap,
            GroupId = NewName("reader"),
            EnableAutoCommit = false,
            IsolationLevel = isolation,
        }).Build();
        var read = new List<(int, string, string)>();
        for (var p = 0; p < partitions; p++)
        {
            var tp = new TopicPartition(topic, p);
            var end = consumer.QueryWatermarkOffsets(tp, Timeout).High.Value;
            consumer.Assign(new TopicPartitionOffset(tp, Offset.Beginning));
            var deadline = DateTime.UtcNow + Timeout;
            while (DateTime.UtcNow < deadline)
            {
                var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
                if (r is null)
                {
                    if (consumer.Position(tp).Value >= end)
                    {
                        break;
                    }

                    continue;
                }

                if (r.IsPartitionEOF)
                {
                    break;
                }

                read.Add((p, r.Message.Key, r.Message.Value));
                if (r.Offset.Value + 1 >= end)
                {
                    break;
                }
            }

            consumer.Unassign();
        }

        return read;
    }

    private long HighWatermark(string topic, int partition)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "watermarks" }).Build();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, partition), Timeout).High.Value;
    }

    private async Task<DescribeTransactionsResponse.TransactionStateData> DescribeAsync(string transactionalId)
    {
        await using var client = await KafkaTestClient.ConnectAsync(fixture.Broker.Port);
        var described = await client.SendAsync<DescribeTransactionsResponse>(ApiKey.DescribeTransactions, 0, new DescribeTransactionsRequest { TransactionalIds = [transactionalId] });
        return described.TransactionStates.Single();
    }

    private async Task<DescribeTransactionsResponse.TransactionStateData> WaitForStateAsync(string transactionalId, string state)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var d = await DescribeAsync(transactionalId);
            if (d.TransactionState == state || DateTime.UtcNow > deadline)
            {
                Assert.Equal(state, d.TransactionState);
                return d;
            }

            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task CommitAndAbortOverSeveralPartitionsEachEndWithAMarker()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewName("txn");
        var id = NewName("tx");
        await CreateTopicAsync(topic, 3);
        using (var producer = TransactionalProducer(id))
        {
            producer.InitTransactions(Timeout);
            producer.BeginTransaction();
            ProduceTo(producer, topic, 3, 10, "committed");

            // While it is open the coordinator lists and describes it with its partitions.
            var open = await DescribeAsync(id);
            Assert.Equal(("Ongoing", 60_000), (open.TransactionState, open.TransactionTimeoutMs));
            Assert.Equal([0, 1, 2], open.Topics.Single(t => t.Topic == topic).Partitions.Order());
            await using (var client = await KafkaTestClient.ConnectAsync(fixture.Broker.Port))
            {
                var listed = await client.SendAsync<ListTransactionsResponse>(ApiKey.ListTransactions, 1, new ListTransactionsRequest { StateFilters = ["Ongoing"], ProducerIdFilters = [open.ProducerId], DurationFilter = -1 });
                Assert.Equal((id, "Ongoing"), (listed.TransactionStates.Single().TransactionalId, listed.TransactionStates.Single().TransactionState));
            }

            producer.CommitTransaction(Timeout);
            await WaitForStateAsync(id, "CompleteCommit");

            producer.BeginTransaction();
            ProduceTo(producer, topic, 3, 10, "aborted");
            producer.AbortTransaction(Timeout);
            var done = await WaitForStateAsync(id, "CompleteAbort");
            Assert.Equal((open.ProducerId, open.ProducerEpoch), (done.ProducerId, done.ProducerEpoch));
            Assert.Empty(done.Topics);
        }

        // Per partition: 10 committed records, their COMMIT marker, 10 aborted ones, their ABORT marker.
        for (var p = 0; p < 3; p++)
        {
            Assert.Equal(22, HighWatermark(topic, p));
        }

        // read_uncommitted sees every data record and no marker.
        var all = ReadAll(topic, 3, IsolationLevel.ReadUncommitted);
        Assert.Equal(60, all.Count);
        Assert.Equal(30, all.Count(r => r.Value == "committed"));
    }

    [Fact]
    public async Task ReadCommittedSeesOnlyCommittedRecords()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewName("txn-rc");
        var id = NewName("tx");
        await CreateTopicAsync(topic, 2);
        using var producer = TransactionalProducer(id);
        producer.InitTransactions(Timeout);
        producer.BeginTransaction();
        ProduceTo(producer, topic, 2, 5, "committed");
        producer.CommitTransaction(Timeout);
        producer.BeginTransaction();
        ProduceTo(producer, topic, 2, 5, "aborted");
        producer.AbortTransaction(Timeout);
        producer.BeginTransaction();
        ProduceTo(producer, topic, 2, 5, "open");

        var committed = ReadAll(topic, 2, IsolationLevel.ReadCommitted);
        Assert.Equal(10, committed.Count);
        Assert.All(committed, r => Assert.Equal("committed", r.Value));

        producer.CommitTransaction(Timeout);
        await WaitForStateAsync(id, "CompleteCommit");
        Assert.Equal(20, ReadAll(topic, 2, IsolationLevel.ReadCommitted).Count);
    }

    [Fact]
    public async Task ASecondProducerWithTheSameTransactionalIdFencesTheFirstAndAbortsItsTransaction()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewName("zombie");
        var id = NewName("tx");
        await CreateTopicAsync(topic, 2);
        using var zombie = TransactionalProducer(id);
        zombie.InitTransactions(Timeout);
        zombie.BeginTransaction();
        ProduceTo(zombie, topic, 2, 5, "zombie");
        var before = await DescribeAsync(id);

        // The new producer's InitTransactions aborts the open transaction first (the broker answers
        // CONCURRENT_TRANSACTIONS meanwhile; librdkafka retries) and gets a newer epoch.
        using var successor = TransactionalProducer(id);
        successor.InitTransactions(Timeout);
        var after = await DescribeAsync(id);
        Assert.Equal(before.ProducerId, after.ProducerId);
        Assert.Equal(before.ProducerEpoch + 2, after.ProducerEpoch);
        Assert.Equal("Empty", after.TransactionState);

        // The zombie cannot commit: it is fenced, a fatal error.
        var fenced = Assert.ThrowsAny<KafkaException>(() => zombie.CommitTransaction(Timeout));
        Assert.True(fenced.Error.IsFatal || fenced.Error.Code is ErrorCode.ProducerFenced or ErrorCode.InvalidProducerEpoch, fenced.Error.ToString());

        successor.BeginTransaction();
        ProduceTo(successor, topic, 2, 5, "successor");
        successor.CommitTransaction(Timeout);
        await WaitForStateAsync(id, "CompleteCommit");

        // Each partition: the zombie's 5 records and their ABORT marker, the successor's 5 and their COMMIT marker.
        Assert.Equal(12, HighWatermark(topic, 0));
        Assert.Equal(12, HighWatermark(topic, 1));
    }

    [Fact]
    public async Task ATransactionLeftOpenIsAbortedByTheCoordinatorWhenItTimesOut()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewName("timeout");
        var id = NewName("tx");
        await CreateTopicAsync(topic, 1);
        using var producer = TransactionalProducer(id, transactionTimeoutMs: 2_000);
        producer.InitTransactions(Timeout);
        producer.BeginTransaction();
        ProduceTo(producer, topic, 1, 3, "abandoned");
        var open = await DescribeAsync(id);
        Assert.Equal(("Ongoing", 2_000), (open.TransactionState, open.TransactionTimeoutMs));

        // Nothing more from the producer: after 2 s (and the next 500 ms check) the coordinator
        // aborts it at a bumped epoch.
        var aborted = await WaitForStateAsync(id, "CompleteAbort");
        Assert.Equal(open.ProducerEpoch + 1, aborted.ProducerEpoch);
        Assert.Equal(4, HighWatermark(topic, 0));

        // The producer learns it was fenced when it tries to commit.
        Assert.ThrowsAny<KafkaException>(() => producer.CommitTransaction(Timeout));
    }

    [Fact]
    public async Task TransactionTimeoutAboveTheBrokersMaximumIsRefused()
    {
        Librdkafka.EnsureLoaded();
        using var producer = TransactionalProducer(NewName("tx"), transactionTimeoutMs: 900_001);
        var refused = Assert.ThrowsAny<KafkaException>(() => producer.InitTransactions(Timeout));
        Assert.Equal(ErrorCode.InvalidTransactionTimeout, refused.Error.Code);
    }
}
