using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Metadata;
using Moldau.Protocol.Records;
using Moldau.Storage;
using Moldau.Storage.Metadata;

namespace Moldau.IntegrationTests;

/// <summary>A data directory laid out as Apache Kafka lays it out opens and serves in Moldau.</summary>
public sealed class KafkaLayoutTests
{
    private static readonly Uuid OrdersId = Uuid.NewRandom();
    private static readonly Uuid EventsId = Uuid.NewRandom();

    /// <summary>Writes a KRaft metadata log and partition logs, with the extra files Kafka leaves.</summary>
    private static byte[] LayOut(string dataDir)
    {
        using (var writer = new MetadataLogWriter(Path.Combine(dataDir, "__cluster_metadata-0"), TimeProvider.System))
        {
            writer.Append(
            [
                (FeatureLevelRecord.SpecApiKey, 0, new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 21 }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "orders", TopicId = OrdersId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = OrdersId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 3, PartitionEpoch = 5, Directories = [Uuid.NewRandom()] }.ToBytes(1)),
                (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 1, TopicId = OrdersId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0, Directories = [Uuid.NewRandom()] }.ToBytes(1)),
            ]);

            // A record type from a future Kafka and a version this code doesn't know: skipped.
            writer.Append([(999, 0, [1, 2, 3]), (TopicRecord.SpecApiKey, 7, [0, 0, 0])]);
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "events", TopicId = EventsId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 0, TopicId = EventsId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0 }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "gone", TopicId = new Uuid(1, 2) }.ToBytes(0)),
                (RemoveTopicRecord.SpecApiKey, 0, new RemoveTopicRecord { TopicId = new Uuid(1, 2) }.ToBytes(0)),
            ]);
        }

        File.WriteAllText(Path.Combine(dataDir, "meta.properties"), "#\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=kafka-made-cluster\n");
        var orders = Path.Combine(dataDir, "orders-0");
        Directory.CreateDirectory(orders);
        var first = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("a"), Encoding.UTF8.GetBytes("one"), 1000), new(null, Encoding.UTF8.GetBytes("two"), 1001)], baseOffset: 0, partitionLeaderEpoch: 3);
        var second = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("three"), 1002)], baseOffset: 2, partitionLeaderEpoch: 3);
        var log = first.Concat(second).ToArray();
        File.WriteAllBytes(Path.Combine(orders, "00000000000000000000.log"), log);

        // Kafka pre-allocates its indexes (zero-filled) and keeps checkpoints beside the segments.
        File.WriteAllBytes(Path.Combine(orders, "00000000000000000000.index"), new byte[10 * 1024 * 1024 / 1024]);
        File.WriteAllBytes(Path.Combine(orders, "00000000000000000000.timeindex"), new byte[12 * 1024]);
        File.WriteAllText(Path.Combine(orders, "leader-epoch-checkpoint"), "0\n1\n3 0\n");
        PartitionMetadataFile.Write(orders, OrdersId);
        return log;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TopicsFromTheMetadataLogAndTheirLogsAreServed(bool cleanShutdownMarker)
    {
        var dataDir = BrokerProcess.NewDataDir();
        var log = LayOut(dataDir);
        if (cleanShutdownMarker)
        {
            // Kafka's marker: the segments and (zero-padded) indexes are then taken as they are.
            File.WriteAllText(Path.Combine(dataDir, ".kafka_cleanshutdown"), "{\"version\":0,\"brokerEpoch\":12}");
        }

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);

        var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal("kafka-made-cluster", metadata.ClusterId);
        Assert.Equal(["events", "orders"], metadata.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
        var orders = metadata.Topics.Single(t => t.Name == "orders");
        Assert.Equal(OrdersId, orders.TopicId);
        Assert.Equal(2, orders.Partitions.Count);
        Assert.Equal(3, orders.Partitions.Single(p => p.PartitionIndex == 0).LeaderEpoch);

        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 16, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { TopicId = OrdersId, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        var p = fetch.Responses.Single().Partitions.Single();
        Assert.Equal((0, 3L), (p.ErrorCode, p.HighWatermark));
        Assert.Equal(log, p.Records!.Value.ToArray());

        // Appends continue after what Kafka wrote; the partition without a directory gets one.
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("four"), 1003)]);
        var produce = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TopicData = [new() { Name = "orders", PartitionData = [new() { Index = 0, Records = batch }, new() { Index = 1, Records = batch }] }],
        });
        Assert.Equal([3L, 0L], produce.Responses.Single().PartitionResponses.Select(r => r.BaseOffset));
        Assert.Equal(OrdersId, PartitionMetadataFile.Read(Path.Combine(dataDir, "orders-1")));

        var described = await client.SendAsync<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest { Topics = [new() { Name = "gone" }, new() { Name = "events" }] });
        Assert.Equal([("events", (short)0), ("gone", (short)ErrorCode.UnknownTopicOrPartition)], described.Topics.Select(t => (t.Name!, t.ErrorCode)));
    }

    [Fact]
    public async Task TopicsKnownOnlyFromAKafkaSnapshotAreServed()
    {
        // Kafka deleted the segments its snapshot covers: the topic "old" is only in the
        // snapshot ending at offset 100, "new" in the segment that follows it.
        var dataDir = BrokerProcess.NewDataDir();
        var metadataDir = Path.Combine(dataDir, "__cluster_metadata-0");
        Directory.CreateDirectory(metadataDir);
        static byte[] Control(short type, long offset)
        {
            var key = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt16BigEndian(key.AsSpan(2), type);
            return RecordBatchBuilder.Build([new(key, [0, 0, 0], 1)], baseOffset: offset, attributes: 0x20);
        }

        static byte[] Data(long offset, params (short Type, short Version, byte[] Body)[] records) =>
            RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(null, MetadataLogReader.Frame(r.Type, r.Version, r.Body), 1)).ToList(), baseOffset: offset);

        var oldId = new Uuid(11, 12);
        var newId = new Uuid(13, 14);
        var snapshot = Data(
            1,
            (FeatureLevelRecord.SpecApiKey, 0, new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 21 }.ToBytes(0)),
            (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "old", TopicId = oldId }.ToBytes(0)),
            (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = oldId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 2 }.ToBytes(1)));
        await File.WriteAllBytesAsync(Path.Combine(metadataDir, "00000000000000000100-0000000003.checkpoint"), [.. Control(3, 0), .. snapshot, .. Control(4, 4)]);
        var segment = Data(
            100,
            (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "new", TopicId = newId }.ToBytes(0)),
            (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = newId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0 }.ToBytes(1)));
        await File.WriteAllBytesAsync(Path.Combine(metadataDir, "00000000000000000100.log"), segment);
        File.WriteAllText(Path.Combine(dataDir, "meta.properties"), "#\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=kafka-made-cluster\n");

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
            Assert.Equal(["new", "old"], metadata.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.Equal(oldId, metadata.Topics.Single(t => t.Name == "old").TopicId);
            Assert.Equal(2, metadata.Topics.Single(t => t.Name == "old").Partitions.Single().LeaderEpoch);

            // A topic made now is appended after the segment, so a restart keeps all three.
            var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = "made", NumPartitions = 1, ReplicationFactor = 1 }] });
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        Assert.Equal(0, await broker.StopAsync());
        var made = MetadataLogReader.ReadAll(metadataDir).Single(r => r.RecordType == TopicRecord.SpecApiKey && KafkaMessageExtensions.Decode<TopicRecord>(r.Body, r.RecordVersion).Name == "made");
        Assert.True(made.Offset >= 102, $"the new topic's record went to offset {made.Offset}, inside what the snapshot covers");
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var after = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal(["made", "new", "old"], after.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ARestartKeepsTopicsIdsAndRecords()
    {
        await using var broker = await BrokerProcess.StartAsync();
        Uuid id;
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "kept" }], AllowAutoTopicCreation = true });
            id = metadata.Topics.Single().TopicId;
            var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("x"), 1)]);
            await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest { Acks = 1, TopicData = [new() { Name = "kept", PartitionData = [new() { Index = 0, Records = batch }] }] });
        }

        // A clean stop leaves Kafka's marker, the segment's indexes and a producer snapshot at the
        // log end; the next start takes the marker away (a crash after it means a full recovery).
        Assert.Equal(0, await broker.StopAsync());
        Assert.True(File.Exists(Path.Combine(broker.DataDir, ".kafka_cleanshutdown")));
        Assert.True(File.Exists(Path.Combine(broker.DataDir, "kept-0", "00000000000000000000.index")));
        Assert.True(File.Exists(Path.Combine(broker.DataDir, "kept-0", "00000000000000000000.timeindex")));
        Assert.True(File.Exists(Path.Combine(broker.DataDir, "kept-0", "00000000000000000001.snapshot")));
        Assert.Contains("kept 0 1\n", await File.ReadAllTextAsync(Path.Combine(broker.DataDir, "recovery-point-offset-checkpoint")), StringComparison.Ordinal);
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var after = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.False(File.Exists(Path.Combine(broker.DataDir, ".kafka_cleanshutdown")));
        Assert.Equal(id, after.Topics.Single(t => t.Name == "kept").TopicId);
        var offsets = await again.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "kept", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] });
        Assert.Equal(1, offsets.Topics.Single().Partitions.Single().Offset);
    }
}
