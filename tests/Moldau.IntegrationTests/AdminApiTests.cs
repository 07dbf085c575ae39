using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol.Messages;
using ApiKey = Moldau.Protocol.ApiKey;

namespace Moldau.IntegrationTests;

/// <summary>Configs, cluster, records and log-dir admin APIs through Confluent.Kafka's AdminClient and raw requests.</summary>
[Collection(BrokerCollection.Name)]
public sealed class AdminApiTests(SharedBroker shared)
{
    private string Bootstrap => shared.Broker.BootstrapServers;

    private async Task<(IAdminClient Admin, string Topic)> TopicAsync(int messages = 10)
    {
        Librdkafka.EnsureLoaded();
        var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        var topic = "cfg-" + Guid.NewGuid().ToString("N")[..8];
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1, Configs = new() { ["retention.ms"] = "3600000" } }]);
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = Bootstrap, EnableIdempotence = true }).Build();
        for (var i = 0; i < messages; i++)
        {
            await producer.ProduceAsync(topic, new Message<Null, string> { Value = $"m{i}" });
        }

        return (admin, topic);
    }

    [Fact]
    public async Task TopicConfigsAreDescribedAlteredAndSurviveInTheMetadataLog()
    {
        var (admin, topic) = await TopicAsync(0);
        using var _ = admin;
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = topic };
        var described = (await admin.DescribeConfigsAsync([resource])).Single();
        Assert.Equal("3600000", described.Entries["retention.ms"].Value);
        Assert.False(described.Entries["retention.ms"].IsDefault);
        Assert.Equal("delete", described.Entries["cleanup.policy"].Value);
        Assert.True(described.Entries["cleanup.policy"].IsDefault);

        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [resource] = [new ConfigEntry { Name = "cleanup.policy", Value = "compact", IncrementalOperation = AlterConfigOpType.Set }, new ConfigEntry { Name = "retention.ms", IncrementalOperation = AlterConfigOpType.Delete }],
        });
        var after = (await admin.DescribeConfigsAsync([resource])).Single();
        Assert.Equal("compact", after.Entries["cleanup.policy"].Value);
        Assert.True(after.Entries["retention.ms"].IsDefault);

        var bad = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(
            new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = [new ConfigEntry { Name = "no.such.config", Value = "1", IncrementalOperation = AlterConfigOpType.Set }] }));
        Assert.Equal(ErrorCode.InvalidConfig, bad.Results.Single().Error.Code);

        var broker = (await admin.DescribeConfigsAsync([new ConfigResource { Type = ResourceType.Broker, Name = "1" }])).Single();
        Assert.Equal("1", broker.Entries["num.partitions"].Value);
    }

    [Fact]
    public async Task DeleteRecordsMovesTheLogStartAndDescribeClusterNamesThisNode()
    {
        var (admin, topic) = await TopicAsync(10);
        using var _ = admin;
        var deleted = await admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 0, 4)]);
        Assert.Equal(4, deleted.Single().Offset.Value);
        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "x" }).Build();
        var watermarks = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10));
        Assert.Equal((4L, 10L), (watermarks.Low.Value, watermarks.High.Value));

        var cluster = await admin.DescribeClusterAsync();
        Assert.Equal(1, cluster.Controller!.Id);
        Assert.Equal(shared.Broker.Port, cluster.Nodes.Single().Port);
    }

    [Fact]
    public async Task LeaderEpochsLogDirsAndProducersAreDescribed()
    {
        var (admin, topic) = await TopicAsync(5);
        admin.Dispose();
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var epochs = await client.SendAsync<OffsetForLeaderEpochResponse>(ApiKey.OffsetForLeaderEpoch, 4, new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, CurrentLeaderEpoch = 0, LeaderEpoch = 0 }] }],
        });
        var e = epochs.Topics.Single().Partitions.Single();
        Assert.Equal((0, 0, 5L), (e.ErrorCode, e.LeaderEpoch, e.EndOffset));

        var fenced = await client.SendAsync<OffsetForLeaderEpochResponse>(ApiKey.OffsetForLeaderEpoch, 4, new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, CurrentLeaderEpoch = 7, LeaderEpoch = 0 }] }],
        });
        Assert.Equal((short)Moldau.Protocol.ErrorCode.UnknownLeaderEpoch, fenced.Topics.Single().Partitions.Single().ErrorCode);

        var dirs = await client.SendAsync<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, 4, new DescribeLogDirsRequest { Topics = [new() { Topic = topic, Partitions = [0] }] });
        var partition = dirs.Results.Single().Topics.Single().Partitions.Single();
        Assert.True(partition.PartitionSize > 0);

        var producers = await client.SendAsync<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest { Topics = [new() { Name = topic, PartitionIndexes = [0] }] });
        var p = producers.Topics.Single().Partitions.Single();
        Assert.Equal(0, p.ErrorCode);
        Assert.Equal(4, Assert.Single(p.ActiveProducers).LastSequence);
    }
}
