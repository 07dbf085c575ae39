using System.Text.Json;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol.Messages;
using ApiKey = Moldau.Protocol.ApiKey;

namespace Moldau.IntegrationTests;

/// <summary>
/// Client quotas against a Moldau process: set and described over TCP (no client library here has
/// the KIP-546 admin calls: librdkafka and kafka-python 2.0.2 lack them), kept across a restart,
/// and enforced on a real librdkafka producer, which reports the broker's throttle in its statistics.
/// </summary>
public sealed class ClientQuotaTests
{
    private static AlterClientQuotasRequest Set(string clientId, string key, double value) => new()
    {
        Entries = [new() { Entity = [new() { EntityType = "client-id", EntityName = clientId }], Ops = [new() { Key = key, Value = value }] }],
    };

    [Fact]
    public async Task QuotasAreSetDescribedAndKeptAcrossARestart()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var altered = await client.SendAsync<AlterClientQuotasResponse>(ApiKey.AlterClientQuotas, 1, Set("kept", "producer_byte_rate", 123456));
            Assert.Equal(0, altered.Entries.Single().ErrorCode);
        }

        await broker.StopAsync(TimeSpan.FromSeconds(10));
        await broker.RestartAsync();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var described = await client.SendAsync<DescribeClientQuotasResponse>(ApiKey.DescribeClientQuotas, 1, new DescribeClientQuotasRequest
            {
                Components = [new() { EntityType = "client-id", MatchType = 0, Match = "kept" }],
                Strict = true,
            });
            Assert.Equal(0, described.ErrorCode);
            var entry = Assert.Single(described.Entries!);
            Assert.Equal("kept", entry.Entity.Single().EntityName);
            Assert.Equal(("producer_byte_rate", 123456.0), (entry.Values.Single().Key, entry.Values.Single().Value));
        }
    }

    [Fact]
    public async Task AThrottledLibrdkafkaProducerSeesTheThrottleAndAnotherClientIdDoesNot()
    {
        Librdkafka.EnsureLoaded();
        await using var broker = await BrokerProcess.StartAsync();
        var topic = "quota-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
        }

        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, (await client.SendAsync<AlterClientQuotasResponse>(ApiKey.AlterClientQuotas, 1, Set("slow", "producer_byte_rate", 50_000))).Entries.Single().ErrorCode);
        }

        // 800 KB against 50 KB/s measured over 10 s of windows: about 6 s of throttle for "slow".
        var slowThrottle = ProduceAndReadThrottle(broker.BootstrapServers, topic, "slow");
        var fastThrottle = ProduceAndReadThrottle(broker.BootstrapServers, topic, "fast");
        Assert.True(slowThrottle > 0, $"slow producer's largest throttle {slowThrottle} ms");
        Assert.Equal(0, fastThrottle);
    }

    /// <summary>Produces 800 KB as <paramref name="clientId"/> and returns the largest broker throttle librdkafka's statistics report.</summary>
    private static long ProduceAndReadThrottle(string bootstrap, string topic, string clientId)
    {
        long max = 0;
        var delivered = 0;
        using var producer = new ProducerBuilder<Null, byte[]>(new ProducerConfig
        {
            BootstrapServers = bootstrap,
            ClientId = clientId,
            StatisticsIntervalMs = 200,
            LingerMs = 5,
            Acks = Acks.Leader,
        }).SetStatisticsHandler((_, json) =>
        {
            using var doc = JsonDocument.Parse(json);
            foreach (var b in doc.RootElement.GetProperty("brokers").EnumerateObject())
            {
                if (b.Value.TryGetProperty("throttle", out var throttle) && throttle.TryGetProperty("max", out var m))
                {
                    Interlocked.Exchange(ref max, Math.Max(Interlocked.Read(ref max), m.GetInt64()));
                }
            }
        }).Build();
        var value = new byte[10_000];
        for (var i = 0; i < 80; i++)
        {
            producer.Produce(topic, new Message<Null, byte[]> { Value = value }, r => Interlocked.Add(ref delivered, r.Error.IsError ? 0 : 1));
        }

        producer.Flush(TimeSpan.FromSeconds(60));
        Assert.Equal(80, delivered);

        // Statistics come every 200 ms; give them a few rounds to carry the throttle.
        for (var i = 0; i < 15 && Interlocked.Read(ref max) == 0; i++)
        {
            producer.Poll(TimeSpan.FromMilliseconds(200));
        }

        if (clientId != "slow")
        {
            // For the unthrottled one, let a few statistics rounds pass so a throttle would show.
            for (var i = 0; i < 3; i++)
            {
                producer.Poll(TimeSpan.FromMilliseconds(200));
            }
        }

        return Interlocked.Read(ref max);
    }
}
