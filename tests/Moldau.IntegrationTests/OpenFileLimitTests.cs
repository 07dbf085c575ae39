using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// A broker under <c>ulimit -n 512</c> serves 1,000 partitions, twice the descriptors it may hold:
/// created, produced to and consumed from through librdkafka, then restarted cleanly and after a
/// kill -9, with every record still there. Segment files beyond the budget
/// (<c>moldau.log.open.files.max</c>, half the limit) are closed when cold and reopened on use:
/// with direct I/O (the default) the O_DIRECT handles too, and through the page cache.
/// </summary>
public sealed class OpenFileLimitTests
{
    private const int Partitions = 1000;
    private const int Limit = 512;

    private const int ODirect = 0x4000;

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

    // The broker's descriptors opened with O_DIRECT (segment data written and read directly).
    private static int DirectDescriptors(int pid)
    {
        var direct = 0;
        foreach (var info in Directory.GetFiles($"/proc/{pid}/fdinfo"))
        {
            try
            {
                var flags = File.ReadLines(info).First(l => l.StartsWith("flags:", StringComparison.Ordinal));
                direct += (Convert.ToInt32(flags["flags:".Length..].Trim(), 8) & ODirect) != 0 ? 1 : 0;
            }
            catch (IOException)
            {
                // Closed while looked at.
            }
        }

        return direct;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task ABrokerUnderUlimit512Serves1000PartitionsAndRestartsCleanlyAndAfterAKill(bool directIo)
    {
        Librdkafka.EnsureLoaded();
        var properties = directIo ? new Dictionary<string, string>() : new() { ["moldau.log.direct.io"] = "false" };
        await using var broker = await BrokerProcess.StartAsync(properties: properties, openFilesLimit: Limit);
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
        if (directIo)
        {
            // Appends and reads went through O_DIRECT handles, the recent ones still open.
            Assert.InRange(DirectDescriptors(broker.Pid), 1, Limit / 2);
        }
        else
        {
            Assert.Equal(0, DirectDescriptors(broker.Pid));
        }

        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        AssertEveryPartitionHoldsItsRecord(broker.BootstrapServers, topic);

        await broker.KillAsync();
        await broker.RestartAsync();
        AssertEveryPartitionHoldsItsRecord(broker.BootstrapServers, topic);
        Assert.True(Directory.GetFiles($"/proc/{broker.Pid}/fd").Length < Limit);
        Assert.DoesNotContain("Too many open files", broker.Output, StringComparison.Ordinal);
    }
}
