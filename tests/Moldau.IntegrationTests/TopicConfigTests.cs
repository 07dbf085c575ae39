using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using CompressionType = Moldau.Protocol.Records.CompressionType;
using ErrorCode = Confluent.Kafka.ErrorCode;
using TimestampType = Confluent.Kafka.TimestampType;

namespace Moldau.IntegrationTests;

/// <summary>
/// Topic configs acted on, through Confluent.Kafka 2.16 against a broker process: the topic's
/// max.message.bytes rather than the broker's, compression.type re-compressing what is stored,
/// KIP-937 timestamp bounds, and config changes reaching open logs without a restart.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class TopicConfigTests(SharedBroker shared)
{
    private string Bootstrap => shared.Broker.BootstrapServers;

    private async Task<string> CreateTopicAsync(string prefix, Dictionary<string, string>? configs = null)
    {
        Librdkafka.EnsureLoaded();
        var topic = prefix + "-" + Guid.NewGuid().ToString("N")[..8];
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1, Configs = configs ?? [] }]);
        return topic;
    }

    private async Task AlterAsync(string topic, string key, string value)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
        {
            [new ConfigResource { Type = ResourceType.Topic, Name = topic }] = [new ConfigEntry { Name = key, Value = value, IncrementalOperation = AlterConfigOpType.Set }],
        });
    }

    private IProducer<string, byte[]> Producer(Confluent.Kafka.CompressionType compression = Confluent.Kafka.CompressionType.None) =>
        new ProducerBuilder<string, byte[]>(new ProducerConfig
        {
            BootstrapServers = Bootstrap,
            CompressionType = compression,
            MessageMaxBytes = 4_000_000,
            LingerMs = 0,
            MessageSendMaxRetries = 0,
        }).Build();

    [Fact]
    public async Task ATopicsMaxMessageBytesIsTheLimitNotTheBrokers()
    {
        var value = new byte[1024 * 1024];
        Random.Shared.NextBytes(value);
        var big = await CreateTopicAsync("max-bytes", new() { ["max.message.bytes"] = "2098176" });
        var small = await CreateTopicAsync("max-bytes-default");
        using var producer = Producer();

        var stored = await producer.ProduceAsync(big, new Message<string, byte[]> { Key = "k", Value = value });
        Assert.Equal(0, stored.Offset.Value);
        var refused = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() => producer.ProduceAsync(small, new Message<string, byte[]> { Key = "k", Value = value }));
        Assert.Equal(ErrorCode.MsgSizeTooLarge, refused.Error.Code);

        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "unused-" + big, EnableAutoCommit = false }).Build();
        consumer.Assign(new TopicPartitionOffset(big, 0, Offset.Beginning));
        var received = consumer.Consume(TimeSpan.FromSeconds(30));
        Assert.Equal(value, received.Message.Value);

        // Lowered while the log is open: the next batch of that size is refused.
        await AlterAsync(big, "max.message.bytes", "100000");
        refused = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() => producer.ProduceAsync(big, new Message<string, byte[]> { Key = "k", Value = value }));
        Assert.Equal(ErrorCode.MsgSizeTooLarge, refused.Error.Code);
    }

    [Fact]
    public async Task BatchesAreStoredInTheTopicsCompressionType()
    {
        var topic = await CreateTopicAsync("recompress", new() { ["compression.type"] = "zstd" });
        var value = System.Text.Encoding.UTF8.GetBytes(string.Concat(Enumerable.Repeat("moldau ", 200)));
        using var producer = Producer(Confluent.Kafka.CompressionType.Gzip);
        await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = "a", Value = value });

        // A live change: the next batch goes to disk uncompressed.
        await AlterAsync(topic, "compression.type", "uncompressed");
        await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = "b", Value = value });
        await AlterAsync(topic, "compression.type", "producer");
        await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = "c", Value = value });

        Assert.Equal([CompressionType.Zstd, CompressionType.None, CompressionType.Gzip], await StoredCodecsAsync(topic));

        using var consumer = new ConsumerBuilder<string, byte[]>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "unused-" + topic, EnableAutoCommit = false }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var received = new List<(string, byte[])>();
        while (received.Count < 3 && consumer.Consume(TimeSpan.FromSeconds(30)) is { } r)
        {
            received.Add((r.Message.Key, r.Message.Value));
        }

        Assert.Equal(["a", "b", "c"], received.Select(r => r.Item1));
        Assert.All(received, r => Assert.Equal(value, r.Item2));
    }

    /// <summary>The codec of each stored batch, as a Fetch returns them.</summary>
    private async Task<List<CompressionType>> StoredCodecsAsync(string topic)
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            ReplicaId = -1,
            MaxWaitMs = 0,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, LogStartOffset = -1 }] }],
        });
        var bytes = fetch.Responses.Single().Partitions.Single().Records!.Value;
        var codecs = new List<CompressionType>();
        var e = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
        while (e.MoveNext())
        {
            codecs.Add(new RecordBatch(bytes.Slice(e.CurrentStart, e.CurrentLength)).Compression);
        }

        return codecs;
    }

    [Fact]
    public async Task TimestampsBeyondMessageTimestampAfterMaxMsAreRefused()
    {
        var topic = await CreateTopicAsync("kip937-after", new() { ["message.timestamp.after.max.ms"] = "3600000" });
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        using var producer = Producer();
        var refused = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() => producer.ProduceAsync(topic, new Message<string, byte[]>
        {
            Key = "future",
            Value = [1],
            Timestamp = new Timestamp(now + (2 * 86_400_000L), TimestampType.CreateTime),
        }));
        Assert.Equal(ErrorCode.InvalidTimestamp, refused.Error.Code);
        var ok = await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = "soon", Value = [2], Timestamp = new Timestamp(now + 60_000, TimestampType.CreateTime) });
        Assert.Equal(0, ok.Offset.Value);

        // before.max.ms set on the open log: an old record that went through a moment ago no longer does.
        var old = new Timestamp(now - (2 * 86_400_000L), TimestampType.CreateTime);
        Assert.Equal(1, (await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = "old", Value = [3], Timestamp = old })).Offset.Value);
        await AlterAsync(topic, "message.timestamp.before.max.ms", "3600000");
        refused = await Assert.ThrowsAsync<ProduceException<string, byte[]>>(() => producer.ProduceAsync(topic, new Message<string, byte[]> { Key = "old", Value = [3], Timestamp = old }));
        Assert.Equal(ErrorCode.InvalidTimestamp, refused.Error.Code);
    }

    [Fact]
    public async Task ASegmentBytesChangeReachesTheOpenLog()
    {
        var topic = await CreateTopicAsync("live-segment-bytes");
        var dir = Path.Combine(shared.Broker.DataDir, topic + "-0");
        using var producer = Producer();
        for (var i = 0; i < 10; i++)
        {
            await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = $"k{i}", Value = new byte[500] });
        }

        Assert.Single(Directory.GetFiles(dir, "*.log"));
        await AlterAsync(topic, "segment.bytes", "2000");
        for (var i = 0; i < 10; i++)
        {
            await producer.ProduceAsync(topic, new Message<string, byte[]> { Key = $"k{i}", Value = new byte[500] });
        }

        // About three 560-byte batches fit in 2,000 bytes: the ten new ones take three or four more segments.
        Assert.InRange(Directory.GetFiles(dir, "*.log").Length, 4, 6);
    }
}
