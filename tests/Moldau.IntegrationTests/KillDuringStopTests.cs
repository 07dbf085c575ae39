using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// A clean stop that is cut short by kill -9 (an operator's second, harder signal; a supervisor's
/// stop timeout): whatever moment the kill lands, the data directory opens again, every write
/// acknowledged with acks=all is there in order, and the partitions take new writes after it.
/// </summary>
public sealed class KillDuringStopTests
{
    private const int Partitions = 64;
    private const int RecordsPerPartition = 25;

    [Theory]
    [InlineData(0)]
    [InlineData(20)]
    [InlineData(150)]
    public async Task AKillDuringACleanStopLosesNoAcknowledgedWrite(int killAfterMs)
    {
        var topic = $"stop-kill-{killAfterMs}";
        await using var broker = await BrokerProcess.StartAsync();
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = Partitions, ReplicationFactor = 1 }]);
        }

        var acknowledged = await ProduceAsync(broker, topic, "before", Acks.All);

        // Unacknowledged load still arriving as the stop begins (acks=1: written, maybe not synced).
        using var loader = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, Acks = Acks.Leader, LingerMs = 5 }).Build();
        for (var i = 0; i < 2_000; i++)
        {
            loader.Produce(new TopicPartition(topic, i % Partitions), new Message<string, string> { Key = "load", Value = $"load-{i}" }, _ => { });
        }

        loader.Flush(TimeSpan.FromSeconds(30));
        using (var term = System.Diagnostics.Process.Start("kill", ["-TERM", broker.Pid.ToString(CultureInfo.InvariantCulture)]))
        {
            await term.WaitForExitAsync();
        }

        await broker.WaitForOutputAsync("shutting down", TimeSpan.FromSeconds(15));
        await Task.Delay(killAfterMs);
        await broker.KillAsync();

        await broker.RestartAsync();
        var after = await ProduceAsync(broker, topic, "after", Acks.All);
        var read = Consume(broker, topic);

        for (var p = 0; p < Partitions; p++)
        {
            var values = read[p].Where(v => !v.StartsWith("load-", StringComparison.Ordinal)).ToList();
            Assert.Equal(acknowledged[p].Concat(after[p]), values);
        }
    }

    private static async Task<List<string>[]> ProduceAsync(BrokerProcess broker, string topic, string prefix, Acks acks)
    {
        var written = Enumerable.Range(0, Partitions).Select(_ => new List<string>()).ToArray();
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, Acks = acks, EnableIdempotence = true }).Build();
        for (var r = 0; r < RecordsPerPartition; r++)
        {
            var sends = new List<Task<DeliveryResult<string, string>>>();
            for (var p = 0; p < Partitions; p++)
            {
                sends.Add(producer.ProduceAsync(new TopicPartition(topic, p), new Message<string, string> { Key = prefix, Value = $"{prefix}-{p}-{r}" }));
            }

            foreach (var result in await Task.WhenAll(sends))
            {
                written[result.Partition.Value].Add(result.Message.Value);
            }
        }

        return written;
    }

    private static List<string>[] Consume(BrokerProcess broker, string topic)
    {
        var read = Enumerable.Range(0, Partitions).Select(_ => new List<string>()).ToArray();
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = topic + "-reader",
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var ended = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (ended.Count < Partitions && DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromSeconds(1));
            if (result is null)
            {
                continue;
            }

            if (result.IsPartitionEOF)
            {
                ended.Add(result.Partition.Value);
                continue;
            }

            ended.Remove(result.Partition.Value);
            read[result.Partition.Value].Add(result.Message.Value);
        }

        Assert.Equal(Partitions, ended.Count);
        return read;
    }
}
