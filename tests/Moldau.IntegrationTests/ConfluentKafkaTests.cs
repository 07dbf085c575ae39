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

/// <summary>The client matrix for Confluent.Kafka 2.16: every codec and acks level, awkward keys, headers, timestamps.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ConfluentKafkaMatrixTests(SharedBroker shared)
{
    public static TheoryData<CompressionType, Acks> Cases()
    {
        var data = new TheoryData<CompressionType, Acks>();
        foreach (var codec in new[] { CompressionType.None, CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd })
        {
            data.Add(codec, Acks.All);
        }

        data.Add(CompressionType.Lz4, Acks.Leader);
        data.Add(CompressionType.Zstd, Acks.None);
        return data;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task FiveThousandRecordsComeBackByteForByte(CompressionType codec, Acks acks)
    {
        Librdkafka.EnsureLoaded();
        var topic = $"matrix-{codec}-{acks}-".ToLowerInvariant() + Guid.NewGuid().ToString("N")[..6];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = shared.Broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 3, ReplicationFactor = 1 }]);
        }

        byte[]? KeyOf(int i) => (i % 4) switch
        {
            0 => null,
            1 => [],
            2 => [0, 255, (byte)i, 0x80],
            _ => System.Text.Encoding.UTF8.GetBytes($"key-{i}"),
        };
        var baseTime = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 100_000;
        var sent = new List<Message<byte[]?, byte[]>>();
        using (var producer = new ProducerBuilder<byte[]?, byte[]>(new ProducerConfig
        {
            BootstrapServers = shared.Broker.BootstrapServers,
            CompressionType = codec,
            Acks = acks,
            EnableIdempotence = acks == Acks.All,
            LingerMs = 5,
        }).Build())
        {
            for (var i = 0; i < 5000; i++)
            {
                var m = new Message<byte[]?, byte[]>
                {
                    Key = KeyOf(i),
                    Value = System.Text.Encoding.UTF8.GetBytes($"value-{i}-" + new string('z', i % 100)),
                    Timestamp = new Timestamp(baseTime + i, TimestampType.CreateTime),
                    Headers = i % 3 == 0 ? [] : new Headers { { "h1", [(byte)i] }, { "h2", null } },
                };
                sent.Add(m);
                producer.Produce(new TopicPartition(topic, i % 3), m);
            }

            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(60)));
        }

        using var consumer = new ConsumerBuilder<byte[]?, byte[]>(new ConsumerConfig { BootstrapServers = shared.Broker.BootstrapServers, GroupId = "m-" + topic, EnableAutoCommit = false }).Build();
        consumer.Assign(Enumerable.Range(0, 3).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var received = new Dictionary<string, Message<byte[]?, byte[]>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (received.Count < 5000 && DateTime.UtcNow < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (r?.Message is not null)
            {
                received[System.Text.Encoding.UTF8.GetString(r.Message.Value)] = r.Message;
            }
        }

        Assert.Equal(5000, received.Count);
        foreach (var m in sent)
        {
            var got = received[System.Text.Encoding.UTF8.GetString(m.Value)];
            Assert.Equal(m.Key, got.Key);
            Assert.Equal(m.Timestamp.UnixTimestampMs, got.Timestamp.UnixTimestampMs);
            Assert.Equal(m.Headers?.Count ?? 0, got.Headers?.Count ?? 0);
            if (m.Headers is { Count: > 0 })
            {
                Assert.Equal(m.Headers[0].GetValueBytes(), got.Headers![0].GetValueBytes());
                Assert.Null(got.Headers[1].GetValueBytes());
            }
        }

        // ListOffsets by timestamp: the first record at or after it, per partition.
        var times = consumer.OffsetsForTimes([new TopicPartitionTimestamp(topic, 1, new Timestamp(baseTime + 3000, TimestampType.CreateTime))], TimeSpan.FromSeconds(10));
        Assert.Equal(1000, times.Single().Offset.Value);
    }

    [Fact]
    public async Task AStaticMemberRejoinsWithoutARebalance()
    {
        Librdkafka.EnsureLoaded();
        var topic = "static-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = shared.Broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 2, ReplicationFactor = 1 }]);
        }

        ConsumerConfig Config() => new()
        {
            BootstrapServers = shared.Broker.BootstrapServers,
            GroupId = "g-" + topic,
            GroupInstanceId = "instance-1",
            SessionTimeoutMs = 10000,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        };

        List<TopicPartition> first;
        using (var c = new ConsumerBuilder<Ignore, Ignore>(Config()).Build())
        {
            c.Subscribe(topic);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (c.Assignment.Count < 2 && DateTime.UtcNow < deadline)
            {
                c.Consume(TimeSpan.FromMilliseconds(100));
            }

            first = c.Assignment;

            // A static member's close doesn't leave the group: the restarted instance takes its place.
            c.Dispose();
        }

        using var again = new ConsumerBuilder<Ignore, Ignore>(Config()).Build();
        again.Subscribe(topic);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (again.Assignment.Count < 2 && DateTime.UtcNow < until)
        {
            again.Consume(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(first.OrderBy(p => p.Partition.Value), again.Assignment.OrderBy(p => p.Partition.Value));
        again.Close();
    }
}
