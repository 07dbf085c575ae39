using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.Coordinator;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using ErrorCode = Moldau.Protocol.ErrorCode;

namespace Moldau.IntegrationTests;

/// <summary>
/// Offsets sent to a transaction against the real broker: the Java producer's
/// sendOffsetsToTransaction replayed at its versions (InitProducerId v5, AddOffsetsToTxn v4,
/// TxnOffsetCommit v4 with the consumer's group metadata of KIP-447, EndTxn v4, and OffsetFetch v9
/// with require_stable as the Java consumer sends it under isolation.level=read_committed), and
/// Confluent.Kafka's SendOffsetsToTransaction: pending until the transaction's marker, committed
/// or dropped by it, across kill -9.
/// </summary>
public sealed class TransactionalOffsetsTests
{
    private const string Group = "eos-group";
    private const string TransactionalId = "eos-tx";

    private static async Task<(string MemberId, int Generation)> JoinAsync(KafkaTestClient client)
    {
        var join = new JoinGroupRequest
        {
            GroupId = Group,
            SessionTimeoutMs = 45000,
            RebalanceTimeoutMs = 300000,
            ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = [0, 3, 0, 0, 0, 0, 0, 0, 0, 0] }],
        };
        var first = await client.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 9, join);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        join.MemberId = first.MemberId;
        var joined = await client.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 9, join);
        Assert.Equal(0, joined.ErrorCode);
        var sync = await client.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 5, new SyncGroupRequest
        {
            GroupId = Group,
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            ProtocolType = "consumer",
            ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = [0, 3, 0, 0, 0, 0, 0, 0, 0, 0] }],
        });
        Assert.Equal(0, sync.ErrorCode);
        return (joined.MemberId, joined.GenerationId);
    }

    private static TxnOffsetCommitRequest TxnCommit(string topic, long producerId, short epoch, long offset, int generation, string member) => new()
    {
        TransactionalId = TransactionalId,
        GroupId = Group,
        ProducerId = producerId,
        ProducerEpoch = epoch,
        GenerationId = generation,
        MemberId = member,
        GroupInstanceId = null,
        Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = offset, CommittedLeaderEpoch = 0, CommittedMetadata = string.Empty }] }],
    };

    private static async Task<short> TxnCommitAsync(KafkaTestClient client, TxnOffsetCommitRequest request, short version = 4) =>
        (await client.SendAsync<TxnOffsetCommitResponse>(ApiKey.TxnOffsetCommit, version, request)).Topics.Single().Partitions.Single().ErrorCode;

    private static async Task<(long Offset, short Error)> FetchAsync(KafkaTestClient client, string topic, bool requireStable)
    {
        var fetched = await client.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest
        {
            Groups = [new() { GroupId = Group, MemberId = null, MemberEpoch = -1, Topics = [new() { Name = topic, PartitionIndexes = [0] }] }],
            RequireStable = requireStable,
        });
        var group = fetched.Groups.Single();
        Assert.Equal(0, group.ErrorCode);
        var p = group.Topics.Single().Partitions.Single();
        return (p.CommittedOffset, p.ErrorCode);
    }

    /// <summary>OffsetFetch with require_stable until the offset is stable, as the Java consumer retries UNSTABLE_OFFSET_COMMIT (the markers follow EndTxn).</summary>
    private static async Task<long> StableAsync(KafkaTestClient client, string topic)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var (offset, error) = await FetchAsync(client, topic, requireStable: true);
            if (error != (short)ErrorCode.UnstableOffsetCommit || DateTime.UtcNow > deadline)
            {
                Assert.Equal(0, error);
                return offset;
            }

            await Task.Delay(50);
        }
    }

    private static async Task<short> AddOffsetsAsync(KafkaTestClient client, long producerId, short epoch) =>
        (await client.SendAsync<AddOffsetsToTxnResponse>(ApiKey.AddOffsetsToTxn, 4, new AddOffsetsToTxnRequest { TransactionalId = TransactionalId, ProducerId = producerId, ProducerEpoch = epoch, GroupId = Group })).ErrorCode;

    private static async Task<short> EndAsync(KafkaTestClient client, long producerId, short epoch, bool commit) =>
        (await client.SendAsync<EndTxnResponse>(ApiKey.EndTxn, 4, new EndTxnRequest { TransactionalId = TransactionalId, ProducerId = producerId, ProducerEpoch = epoch, Committed = commit })).ErrorCode;

    [Fact]
    public async Task The_Java_producers_sendOffsetsToTransaction_sequence_commits_and_aborts_offsets_across_kills()
    {
        await using var broker = await BrokerProcess.StartAsync();
        const string topic = "eos-in";
        long producerId;
        short epoch;
        string member;
        int generation;
        {
            await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = true });
            Assert.Equal(0, metadata.Topics.Single().ErrorCode);
            var coordinators = await client.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 6, new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = [Group] });
            Assert.Equal(0, coordinators.Coordinators.Single().ErrorCode);
            (member, generation) = await JoinAsync(client);
            var plain = await client.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 9, new OffsetCommitRequest
            {
                GroupId = Group,
                GenerationIdOrMemberEpoch = generation,
                MemberId = member,
                Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 5, CommittedMetadata = string.Empty }] }],
            });
            Assert.Equal(0, plain.Topics.Single().Partitions.Single().ErrorCode);

            var txnCoordinator = await client.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 6, new FindCoordinatorRequest { KeyType = 1, CoordinatorKeys = [TransactionalId] });
            Assert.Equal(0, txnCoordinator.Coordinators.Single().ErrorCode);
            var init = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = TransactionalId, TransactionTimeoutMs = 120_000, ProducerId = -1, ProducerEpoch = -1 });
            Assert.Equal(0, init.ErrorCode);
            (producerId, epoch) = (init.ProducerId, init.ProducerEpoch);

            // Before AddOffsetsToTxn the group's partition is not in the transaction (KIP-890).
            Assert.Equal((short)ErrorCode.TransactionAbortable, await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 17, generation, member)));
            Assert.Equal(0, await AddOffsetsAsync(client, producerId, epoch));

            // KIP-447: the consumer's generation and member id are checked against the group.
            Assert.Equal((short)ErrorCode.IllegalGeneration, await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 17, generation + 1, member)));
            Assert.Equal((short)ErrorCode.UnknownMemberId, await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 17, generation, "not-a-member")));
            Assert.Equal((short)0, await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 17, generation, member)));

            Assert.Equal((5L, (short)0), await FetchAsync(client, topic, requireStable: false));
            Assert.Equal((-1L, (short)ErrorCode.UnstableOffsetCommit), await FetchAsync(client, topic, requireStable: true));
        }

        await broker.KillAsync();
        await broker.RestartAsync();

        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            // The transactional batch is replayed as pending: still not visible, still unstable.
            Assert.Equal((5L, (short)0), await FetchAsync(client, topic, requireStable: false));
            Assert.Equal((-1L, (short)ErrorCode.UnstableOffsetCommit), await FetchAsync(client, topic, requireStable: true));

            Assert.Equal(0, await EndAsync(client, producerId, epoch, commit: true));
            Assert.Equal(17, await StableAsync(client, topic));

            // After the transaction ended, a late TxnOffsetCommit is refused, not left pending. The
            // offsets are visible once the markers are written, a moment before CompleteCommit is
            // (as in Kafka); until then the answer is the retriable CONCURRENT_TRANSACTIONS.
            var late = await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 18, -1, string.Empty));
            for (var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10); late == (short)ErrorCode.ConcurrentTransactions && DateTime.UtcNow < deadline;)
            {
                await Task.Delay(50);
                late = await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 18, -1, string.Empty));
            }

            Assert.Equal((short)ErrorCode.TransactionAbortable, late);
            Assert.Equal((short)ErrorCode.InvalidTxnState, await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 18, -1, string.Empty), version: 3));
            Assert.Equal((17L, (short)0), await FetchAsync(client, topic, requireStable: true));

            // A second transaction, aborted: its offset is dropped.
            Assert.Equal(0, await AddOffsetsAsync(client, producerId, epoch));
            Assert.Equal((short)0, await TxnCommitAsync(client, TxnCommit(topic, producerId, epoch, 30, -1, string.Empty)));
            Assert.Equal(0, await EndAsync(client, producerId, epoch, commit: false));
            Assert.Equal(17, await StableAsync(client, topic));
        }

        await broker.KillAsync();
        await broker.RestartAsync();

        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal((17L, (short)0), await FetchAsync(client, topic, requireStable: true));
        }
    }

    [Fact]
    public async Task Confluent_Kafka_offsets_sent_to_a_committed_transaction_count_and_to_an_aborted_one_do_not()
    {
        Librdkafka.EnsureLoaded();
        await using var broker = await BrokerProcess.StartAsync();
        const string input = "eos-client-in";
        const string group = "eos-client-group";
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = input, NumPartitions = 1, ReplicationFactor = 1 }, new TopicSpecification { Name = "eos-client-out", NumPartitions = 1, ReplicationFactor = 1 }]);
        }

        using (var plain = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            for (var i = 0; i < 10; i++)
            {
                await plain.ProduceAsync(input, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
            }
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            IsolationLevel = IsolationLevel.ReadCommitted,
            SessionTimeoutMs = 6000,
        }).Build();
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, TransactionalId = "eos-client-tx" }).Build();
        producer.InitTransactions(TimeSpan.FromSeconds(30));
        consumer.Subscribe(input);

        var consumed = new List<ConsumeResult<string, string>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (consumed.Count < 10 && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { } r)
            {
                consumed.Add(r);
            }
        }

        Assert.Equal(10, consumed.Count);

        // Commit: the output and the input offset 5 together.
        producer.BeginTransaction();
        foreach (var r in consumed.Take(5))
        {
            producer.Produce("eos-client-out", new Message<string, string> { Key = r.Message.Key, Value = r.Message.Value.ToUpperInvariant() });
        }

        producer.SendOffsetsToTransaction([new TopicPartitionOffset(input, 0, 5)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
        producer.CommitTransaction(TimeSpan.FromSeconds(30));
        Assert.Equal(5, Committed());

        // Abort: offset 10 is dropped with the transaction.
        producer.BeginTransaction();
        producer.SendOffsetsToTransaction([new TopicPartitionOffset(input, 0, 10)], consumer.ConsumerGroupMetadata, TimeSpan.FromSeconds(30));
        producer.AbortTransaction(TimeSpan.FromSeconds(30));
        Assert.Equal(5, Committed());

        await broker.KillAsync();
        await broker.RestartAsync();
        Assert.Equal(5, Committed());

        // EndTxn answers once the decision is logged; the markers (and with them the offsets) are
        // applied after it, as in Kafka. require_stable makes the broker answer UNSTABLE_OFFSET_COMMIT
        // until then, so the check waits for the outcome instead of racing it.
        long Committed()
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (true)
            {
                try
                {
                    var listed = admin.ListConsumerGroupOffsetsAsync(
                        [new ConsumerGroupTopicPartitions(group, [new TopicPartition(input, 0)])],
                        new ListConsumerGroupOffsetsOptions { RequireStableOffsets = true }).GetAwaiter().GetResult();
                    var partition = listed.Single().Partitions.Single();
                    if (partition.Error.Code != Confluent.Kafka.ErrorCode.UnstableOffsetCommit)
                    {
                        return partition.Offset.Value;
                    }
                }
                catch (ListConsumerGroupOffsetsException e) when (e.Results.Single().Partitions.Single().Error.Code == Confluent.Kafka.ErrorCode.UnstableOffsetCommit)
                {
                }

                Assert.True(DateTime.UtcNow < deadline, "the group's offsets stayed unstable for 30 s after the transaction ended");
                Thread.Sleep(100);
            }
        }
    }
}
