using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.IntegrationTests;

[Collection(BrokerCollection.Name)]
public sealed class MetadataTests(SharedBroker shared)
{
    private static string NewTopic() => "meta-" + Guid.NewGuid().ToString("N")[..10];

    [Theory]
    [InlineData(1)]
    [InlineData(4)]
    [InlineData(9)]
    [InlineData(12)]
    public async Task AnUnknownTopicIsCreatedWithNumPartitionsAndLaidOutOnDisk(short version)
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var topic = NewTopic();
        var request = new MetadataRequest { Topics = [new MetadataRequest.MetadataRequestTopic { Name = topic }], AllowAutoTopicCreation = true };
        var response = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, version, request);

        var broker = Assert.Single(response.Brokers);
        Assert.Equal(1, broker.NodeId);
        Assert.Equal("127.0.0.1", broker.Host);
        Assert.Equal(shared.Broker.Port, broker.Port);
        var t = Assert.Single(response.Topics);
        Assert.Equal(0, t.ErrorCode);
        Assert.Equal(topic, t.Name);
        var p = Assert.Single(t.Partitions);
        Assert.Equal(1, p.LeaderId);
        Assert.Equal([1], p.ReplicaNodes);
        Assert.Equal([1], p.IsrNodes);

        var dir = Path.Combine(shared.Broker.DataDir, topic + "-0");
        Assert.True(Directory.Exists(dir));
        var metadata = await File.ReadAllTextAsync(Path.Combine(dir, "partition.metadata"));
        Assert.StartsWith("version: 0\ntopic_id: ", metadata, StringComparison.Ordinal);
        if (version >= 10)
        {
            Assert.Contains(t.TopicId.ToString(), metadata, StringComparison.Ordinal);
        }

        Assert.True(Directory.Exists(Path.Combine(shared.Broker.DataDir, "__cluster_metadata-0")));
    }

    [Fact]
    public async Task NullTopicsListsEveryTopicAndEmptyListsNone()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var topic = NewTopic();
        await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = true });

        var all = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Contains(all.Topics, t => t.Name == topic);
        var none = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [] });
        Assert.Empty(none.Topics);

        // v0 has no null: an empty list means every topic.
        var v0 = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 0, new MetadataRequest { Topics = [] });
        Assert.Contains(v0.Topics, t => t.Name == topic);
    }

    [Fact]
    public async Task NoAutoCreationWhenTheRequestSaysSo()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var topic = NewTopic();
        var response = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = false });
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, Assert.Single(response.Topics).ErrorCode);
        Assert.False(Directory.Exists(Path.Combine(shared.Broker.DataDir, topic + "-0")));
    }

    [Fact]
    public async Task AnInvalidTopicNameGetsError17()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var response = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "bad/name" }], AllowAutoTopicCreation = true });
        Assert.Equal((short)ErrorCode.InvalidTopicException, Assert.Single(response.Topics).ErrorCode);
    }

    [Fact]
    public async Task DescribeTopicPartitionsSortsTopicsAndMarksUnknownOnes()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var b = "dtp-b-" + Guid.NewGuid().ToString("N")[..6];
        var a = "dtp-a-" + Guid.NewGuid().ToString("N")[..6];
        await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = a }, new() { Name = b }], AllowAutoTopicCreation = true });
        var missing = "dtp-c-missing";
        var response = await client.SendAsync<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest
        {
            Topics = [new() { Name = missing }, new() { Name = b }, new() { Name = a }],
        });
        Assert.Equal([a, b, missing], response.Topics.Select(t => t.Name));
        Assert.Equal(0, response.Topics[0].ErrorCode);
        Assert.False(response.Topics[0].TopicId.IsZero);
        var p = Assert.Single(response.Topics[0].Partitions);
        Assert.Equal((0, 1, 0), (p.PartitionIndex, p.LeaderId, p.LeaderEpoch));
        Assert.Equal([1], p.ReplicaNodes);
        Assert.Equal([1], p.IsrNodes);
        var unknown = response.Topics[2];
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknown.ErrorCode);
        Assert.True(unknown.TopicId.IsZero);
        Assert.Empty(unknown.Partitions);
        Assert.Null(response.NextCursor);
    }
}

public sealed class DescribeTopicPartitionsPaginationTests
{
    [Fact]
    public async Task TheLimitAndTheCursorPageThroughPartitions()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["num.partitions"] = "3" });
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "pa" }, new() { Name = "pb" }], AllowAutoTopicCreation = true });

        var seen = new List<(string, int)>();
        DescribeTopicPartitionsRequest.CursorData? cursor = null;
        for (var page = 0; page < 10; page++)
        {
            var response = await client.SendAsync<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest
            {
                Topics = [new() { Name = "pb" }, new() { Name = "pa" }],
                ResponsePartitionLimit = 2,
                Cursor = cursor,
            });
            Assert.True(response.Topics.Sum(t => t.Partitions.Count) <= 2);
            seen.AddRange(response.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name!, p.PartitionIndex))));
            if (response.NextCursor is null)
            {
                break;
            }

            cursor = new DescribeTopicPartitionsRequest.CursorData { TopicName = response.NextCursor.TopicName, PartitionIndex = response.NextCursor.PartitionIndex };
        }

        Assert.Equal([("pa", 0), ("pa", 1), ("pa", 2), ("pb", 0), ("pb", 1), ("pb", 2)], seen);
    }
}
