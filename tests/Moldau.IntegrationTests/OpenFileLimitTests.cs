using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// A broker under <c>ulimit -n 512</c> serves 1,000 partitions, twice the descriptors it may hold:
/// created, produced to and consumed from through librdkafka, then restarted cleanly and after a
/// kill -9, with every record still there. Segment files beyond the budget
/// (<c>moldau.log.open.files.max</c>, half the limit) are closed when cold and reopened on use.
/// </summary>
public sealed class OpenFileLimitTests
{
    private const int Partitions = 1000;
    private const int Limit = 512;

    // The O_DIRECT handle of a segment is not yet under the budget: page-cache I/O here.
    private static readonly Dictionary<string, string> Properties = new() { ["moldau.log.direct.io"] = "false" };

    private static void AssertEveryPartitionHoldsItsRecord(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "unused-" + topic,
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var seen = new Dictionary<int, string>();
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (seen.Count < Partitions && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromSeconds(1)) is { IsPartitionEOF: false, Message: { } message } result)
            {
                Assert.Equal(0, result.Offset.Value);
                seen[result.Partition.Value] = message.Value;
            }
        }

        Assert.Equal(Partitions, seen.Count);
        Assert.All(seen, kv => Assert.Equal("value-" + kv.Key, kv.Value));
    }

    [Fact]
    public async Task ABrokerUnderUlimit512Serves1000PartitionsAndRestartsCleanlyAndAfterAKill()
    {
        Librdkafka.EnsureLoaded();
        await using var broker = await BrokerProcess.StartAsync(properties: Properties, openFilesLimit: Limit);
        var topic = "fd-limit-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = Partitions, ReplicationFactor = 1 }]);
        }

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, Acks = Acks.All }).Build())
        {
            var failed = 0;
            for (var p = 0; p < Partitions; p++)
            {
                producer.Produce(new TopicPartition(topic, p), new Message<string, string> { Key = "key-" + p, Value = "value-" + p }, r =>
                {
                    if (r.Error.IsError)
                    {
                        Interlocked.Increment(ref failed);
                    }
                });
            }

            Assert.Equal(0, producer.Flush(TimeSpan.FromMinutes(1)));
            Assert.Equal(0, failed);
        }

        // More partitions than descriptors: without the cache the broker could not hold them.
        Assert.True(Directory.GetDirectories(broker.DataDir, topic + "-*").Length == Partitions);
        AssertEveryPartitionHoldsItsRecord(broker.BootstrapServers, topic);
        Assert.True(Directory.GetFiles($"/proc/{broker.Pid}/fd").Length < Limit);

        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        AssertEveryPartitionHoldsItsRecord(broker.BootstrapServers, topic);

        await broker.KillAsync();
        await broker.RestartAsync();
        AssertEveryPartitionHoldsItsRecord(broker.BootstrapServers, topic);
        Assert.DoesNotContain("Too many open files", broker.Output, StringComparison.Ordinal);
    }
}
