using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Tests.Metadata;

/// <summary>Records replayed into a <see cref="MetadataDelta"/> make the image Kafka's replay would.</summary>
public sealed class MetadataDeltaTests
{
    private static readonly Uuid Orders = new(1, 1);
    private static readonly Uuid Events = new(2, 2);

    private static MetadataImage Replay(MetadataImage image, params IKafkaMessage[] records)
    {
        var delta = new MetadataDelta(image, NullLogger.Instance);
        foreach (var record in records)
        {
            // Through the bytes, as start-up reads them.
            var body = record switch
            {
                TopicRecord r => (TopicRecord.SpecApiKey, r.ToBytes(0)),
                PartitionRecord r => (PartitionRecord.SpecApiKey, r.ToBytes(0)),
                PartitionChangeRecord r => (PartitionChangeRecord.SpecApiKey, r.ToBytes(0)),
                RemoveTopicRecord r => (RemoveTopicRecord.SpecApiKey, r.ToBytes(0)),
                ProducerIdsRecord r => (ProducerIdsRecord.SpecApiKey, r.ToBytes(0)),
                ConfigRecord r => (ConfigRecord.SpecApiKey, r.ToBytes(0)),
                _ => throw new ArgumentException(record.GetType().Name),
            };
            delta.Replay(MetadataDelta.Decode(body.Item1, 0, body.Item2), -1);
        }

        return delta.Apply();
    }

    private static PartitionRecord Partition(Uuid topic, int id, int epoch = 0) =>
        new() { TopicId = topic, PartitionId = id, Leader = 1, LeaderEpoch = epoch, Isr = [1], Replicas = [1] };

    [Fact]
    public void ReplayBuildsTheImage()
    {
        var image = Replay(
            MetadataImage.Empty,
            new TopicRecord { Name = "orders", TopicId = Orders },
            new ConfigRecord { ResourceType = MetadataDelta.TopicResource, ResourceName = "orders", Name = "cleanup.policy", Value = "compact" },
            Partition(Orders, 0, epoch: 3),
            Partition(Orders, 1),
            new PartitionChangeRecord { TopicId = Orders, PartitionId = 1, Leader = 1 },
            new PartitionChangeRecord { TopicId = Orders, PartitionId = 1, Isr = [1, 2] },
            new TopicRecord { Name = "events", TopicId = Events },
            Partition(Events, 0),
            new ConfigRecord { ResourceType = MetadataDelta.BrokerResource, ResourceName = "1", Name = "log.retention.ms", Value = "1000" },
            new ProducerIdsRecord { BrokerId = 1, NextProducerId = 2000 },
            new ProducerIdsRecord { BrokerId = 1, NextProducerId = 1000 },
            new RemoveTopicRecord { TopicId = Events });

        Assert.Equal(
            $"""
            topic orders {Orders}
              config cleanup.policy=compact
              partition 0 leader 1 epoch 3 partition-epoch 0 isr [1] replicas [1]
              partition 1 leader 1 epoch 1 partition-epoch 2 isr [1,2] replicas [1]
            broker config log.retention.ms=1000
            next producer id 2000

            """.Replace("\r", "", StringComparison.Ordinal),
            ImageText.Of(image));
        Assert.Same(image.Find("orders"), image.Find(Orders));
        Assert.Null(image.Find(Events));
        Assert.All(image.Find(Orders)!.Partitions, p => Assert.Same(image.Find(Orders), p.Topic));
    }

    [Fact]
    public void ADeltaLeavesItsBaseImageAsItWasAndKeepsUntouchedTopics()
    {
        var first = Replay(MetadataImage.Empty, new TopicRecord { Name = "orders", TopicId = Orders }, Partition(Orders, 0), new TopicRecord { Name = "events", TopicId = Events }, Partition(Events, 0));
        var before = ImageText.Of(first);
        var second = Replay(first, new ConfigRecord { ResourceType = MetadataDelta.TopicResource, ResourceName = "orders", Name = "retention.ms", Value = "5" }, Partition(Orders, 1));

        Assert.Equal(before, ImageText.Of(first));
        Assert.Empty(first.Find("orders")!.Configs);
        Assert.Equal("5", second.Find("orders")!.Configs["retention.ms"]);
        Assert.Equal(2, second.Find("orders")!.Partitions.Length);
        Assert.Same(first.Find("events"), second.Find("events"));

        // The partition that was there keeps its host (its log and its waiters) in the new image.
        Assert.Same(first.Find("orders")!.Partitions[0].Host, second.Find("orders")!.Partitions[0].Host);
    }

    [Fact]
    public void HostileRecordsAreSkipped()
    {
        var image = Replay(
            MetadataImage.Empty,
            new TopicRecord { Name = "../etc", TopicId = Orders },
            Partition(Orders, 0),
            new TopicRecord { Name = "__cluster_metadata", TopicId = new Uuid(3, 3) },
            new TopicRecord { Name = "events", TopicId = Events },
            Partition(Events, -1),
            Partition(Events, Handlers.CreateTopicsHandler.MaxPartitions),
            Partition(Events, 0),
            new ConfigRecord { ResourceType = MetadataDelta.TopicResource, ResourceName = "missing", Name = "retention.ms", Value = "5" },
            new PartitionChangeRecord { TopicId = Events, PartitionId = 7, Leader = 1 });

        Assert.Equal(["events"], image.TopicsByName.Keys);
        Assert.Equal([Events], image.TopicsById.Keys);
        Assert.Single(image.Find("events")!.Partitions);
    }

    [Fact]
    public void ANameRecordedAgainReplacesTheTopicItNamed()
    {
        var image = Replay(
            MetadataImage.Empty,
            new TopicRecord { Name = "orders", TopicId = Orders },
            Partition(Orders, 0),
            new TopicRecord { Name = "orders", TopicId = Events });

        Assert.Equal(Events, image.Find("orders")!.Id);
        Assert.Null(image.Find(Orders));
        Assert.Empty(image.Find("orders")!.Partitions);
    }
}
