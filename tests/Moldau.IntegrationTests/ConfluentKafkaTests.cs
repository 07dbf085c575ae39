using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>Confluent.Kafka 2.16.0 (librdkafka 2.16.0, flexible versions) against a Moldau process.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ConfluentKafkaTests(SharedBroker shared)
{
    private string Bootstrap => shared.Broker.BootstrapServers;

    private static string NewTopic(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public void RunsLibrdkafka2_16()
    {
        Librdkafka.EnsureLoaded();
        Assert.Equal("2.16.0", Library.VersionString);
    }

    [Fact]
    public async Task AdminCreatesListsGrowsAndDeletesTopics()
    {
        Librdkafka.EnsureLoaded();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        var topic = NewTopic("admin");
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = "60000" } }]);

        var metadata = admin.GetMetadata(topic, TimeSpan.FromSeconds(10));
        Assert.Equal(3, metadata.Topics.Single().Partitions.Count);

        var exists = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1 }]));
        Assert.Equal(ErrorCode.TopicAlreadyExists, exists.Results.Single().Error.Code);

        var replicated = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = NewTopic("rf3"), NumPartitions = 1, ReplicationFactor = 3 }]));
        Assert.Equal(ErrorCode.InvalidReplicationFactor, replicated.Results.Single().Error.Code);

        await admin.CreatePartitionsAsync([new PartitionsSpecification { Topic = topic, IncreaseTo = 5 }]);
        Assert.Equal(5, admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Count);

        await admin.DeleteTopicsAsync([topic]);
        var after = admin.GetMetadata(TimeSpan.FromSeconds(10));
        Assert.DoesNotContain(after.Topics, t => t.Topic == topic);
    }

    [Fact]
    public async Task AnIdempotentProducerAndAnAssignedConsumerRoundTrip()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewTopic("idem");
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 1 }]);
        }

        var sent = new Dictionary<string, (int Partition, long Offset)>();
        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = Bootstrap,
            EnableIdempotence = true,
            Acks = Acks.All,
            LingerMs = 5,
            CompressionType = CompressionType.Zstd,
        }).Build())
        {
            var deliveries = Enumerable.Range(0, 1000).Select(i => producer.ProduceAsync(topic, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" })).ToList();
            foreach (var d in await Task.WhenAll(deliveries))
            {
                Assert.Equal(PersistenceStatus.Persisted, d.Status);
                sent[d.Message.Key] = (d.Partition.Value, d.Offset.Value);
            }
        }

        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = Bootstrap,
            GroupId = "unused-assign-only",
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var received = new Dictionary<string, (int, long)>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (received.Count < 1000 && DateTime.UtcNow < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (r is { IsPartitionEOF: false, Message: not null })
            {
                Assert.Equal($"v{r.Message.Key[1..]}", r.Message.Value);
                received[r.Message.Key] = (r.Partition.Value, r.Offset.Value);
            }
        }

        Assert.Equal(sent, received);
    }
}
