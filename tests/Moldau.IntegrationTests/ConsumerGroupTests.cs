using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>Confluent.Kafka consumer groups: the join/sync rounds with client-side assignors, commits, rebalances.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ConsumerGroupTests(SharedBroker shared)
{
    private string Bootstrap => shared.Broker.BootstrapServers;

    private async Task<string> TopicWithMessagesAsync(int partitions, int messages)
    {
        Librdkafka.EnsureLoaded();
        var topic = "cg-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
        }

        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = Bootstrap, LingerMs = 2 }).Build();
        for (var i = 0; i < messages; i++)
        {
            producer.Produce(topic, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
        }

        producer.Flush(TimeSpan.FromSeconds(30));
        return topic;
    }

    private IConsumer<string, string> Consumer(string group, PartitionAssignmentStrategy strategy, string? instanceId = null) =>
        new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap,
            GroupId = group,
            GroupInstanceId = instanceId,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
            PartitionAssignmentStrategy = strategy,
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 500,
        }).Build();

    [Theory]
    [InlineData(PartitionAssignmentStrategy.Range)]
    [InlineData(PartitionAssignmentStrategy.RoundRobin)]
    [InlineData(PartitionAssignmentStrategy.CooperativeSticky)]
    public async Task TwoMembersSplitThePartitionsAndCommittedOffsetsCarryOver(PartitionAssignmentStrategy strategy)
    {
        var topic = await TopicWithMessagesAsync(4, 200);
        var group = "group-" + topic;
        using var a = Consumer(group, strategy);
        using var b = Consumer(group, strategy);
        a.Subscribe(topic);
        b.Subscribe(topic);

        var seen = new HashSet<string>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((seen.Count < 200 || a.Assignment.Count + b.Assignment.Count != 4 || a.Assignment.Count == 0 || b.Assignment.Count == 0) && DateTime.UtcNow < deadline)
        {
            foreach (var c in new[] { a, b })
            {
                var r = c.Consume(TimeSpan.FromMilliseconds(100));
                if (r?.Message is not null)
                {
                    seen.Add(r.Message.Key);
                }
            }
        }

        Assert.Equal(200, seen.Count);
        Assert.Equal(4, a.Assignment.Count + b.Assignment.Count);
        Assert.Empty(a.Assignment.Intersect(b.Assignment));

        // Commits made while a rebalance runs are refused (ILLEGAL_GENERATION, REBALANCE_IN_PROGRESS)
        // as Kafka refuses them; a client commits again once the group is stable.
        CommitPositions(a);
        CommitPositions(b);
        a.Close();
        b.Close();

        // A new member of the group starts where the others committed: nothing old comes back.
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = Bootstrap }).Build())
        {
            await producer.ProduceAsync(topic, new Message<string, string> { Key = "late", Value = "late" });
        }

        using var c2 = Consumer(group, strategy);
        c2.Subscribe(topic);
        ConsumeResult<string, string>? next = null;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (next is null && DateTime.UtcNow < deadline)
        {
            next = c2.Consume(TimeSpan.FromMilliseconds(200));
        }

        Assert.Equal("late", next?.Message.Key);
        c2.Close();
    }

    [Fact]
    public async Task AMemberThatLeavesHandsItsPartitionsToTheOtherBeforeTheSessionTimeout()
    {
        var topic = await TopicWithMessagesAsync(4, 20);
        var group = "leave-" + topic;
        using var a = Consumer(group, PartitionAssignmentStrategy.Range);
        using var b = Consumer(group, PartitionAssignmentStrategy.Range);
        a.Subscribe(topic);
        b.Subscribe(topic);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while ((a.Assignment.Count == 0 || b.Assignment.Count == 0 || a.Assignment.Count + b.Assignment.Count != 4) && DateTime.UtcNow < deadline)
        {
            a.Consume(TimeSpan.FromMilliseconds(50));
            b.Consume(TimeSpan.FromMilliseconds(50));
        }

        Assert.Equal(4, a.Assignment.Count + b.Assignment.Count);
        var left = DateTime.UtcNow;
        a.Close();
        while (b.Assignment.Count != 4 && DateTime.UtcNow - left < TimeSpan.FromSeconds(20))
        {
            b.Consume(TimeSpan.FromMilliseconds(50));
        }

        Assert.Equal(4, b.Assignment.Count);
        Assert.True(DateTime.UtcNow - left < TimeSpan.FromSeconds(5), $"took {DateTime.UtcNow - left}");
        b.Close();
    }

    private static void CommitPositions(IConsumer<string, string> consumer)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                consumer.Commit();
                return;
            }
            catch (KafkaException e) when (attempt < 50 && e.Error.Code is ErrorCode.IllegalGeneration or ErrorCode.RebalanceInProgress or ErrorCode.UnknownMemberId)
            {
                consumer.Consume(TimeSpan.FromMilliseconds(100));
            }
        }
    }

    [Fact]
    public async Task GroupsAreListedDescribedAndDeleted()
    {
        var topic = await TopicWithMessagesAsync(1, 3);
        var group = "admin-" + topic;
        using (var c = Consumer(group, PartitionAssignmentStrategy.Range))
        {
            c.Subscribe(topic);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            ConsumeResult<string, string>? r = null;
            while (r is null && DateTime.UtcNow < deadline)
            {
                r = c.Consume(TimeSpan.FromMilliseconds(200));
            }

            c.Commit(r!);
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
            var described = await admin.DescribeConsumerGroupsAsync([group]);
            var d = described.ConsumerGroupDescriptions.Single();
            Assert.Equal(ConsumerGroupState.Stable, d.State);
            Assert.Single(d.Members);
            var listed = await admin.ListConsumerGroupsAsync();
            Assert.Contains(listed.Valid, g => g.GroupId == group);
            var offsets = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, [new TopicPartition(topic, 0)])]);
            Assert.Equal(r!.Offset.Value + 1, offsets.Single().Partitions.Single().Offset.Value);
            c.Close();

            await admin.DeleteGroupsAsync([group]);
            var after = await admin.ListConsumerGroupsAsync();
            Assert.DoesNotContain(after.Valid, g => g.GroupId == group);
        }
    }
}
