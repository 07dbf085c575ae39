using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.IntegrationTests;

/// <summary>
/// A segment damaged while the broker was stopped cleanly: the start logs the file and position,
/// bumps the partition's leader epoch, and never hands the damaged offsets out again.
/// </summary>
public sealed class CleanStopCorruptionTests
{
    private const string Topic = "damaged";

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task CorruptionFoundAfterACleanStopIsLoggedAndOffsetsAreNotReused(bool wholeSegment)
    {
        await using var broker = await BrokerProcess.StartAsync();
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(i, await ProduceAsync(broker, $"before-{i}"));
        }

        Assert.Equal(0, await broker.StopAsync());
        var segment = Path.Combine(broker.DataDir, Topic + "-0", "00000000000000000000.log");
        var bytes = await File.ReadAllBytesAsync(segment);
        if (wholeSegment)
        {
            new Random(5).NextBytes(bytes);
        }
        else
        {
            bytes[^2] ^= 0x5A; // inside the last record: its batch header still looks whole
        }

        await File.WriteAllBytesAsync(segment, bytes);
        await broker.RestartAsync();

        // The first request that needs the log opens it (Metadata answers from the metadata image
        // without opening logs; the bump reaches it once the log is open).
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var offsets = await client.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }],
            });
            Assert.Equal((0, 5L, 1), offsets.Topics.Single().Partitions.Select(p => ((int)p.ErrorCode, p.Offset, p.LeaderEpoch)).Single());
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }] });
            Assert.Equal(1, metadata.Topics.Single().Partitions.Single().LeaderEpoch);
        }

        Assert.Contains($"{segment} is corrupt at position ", broker.Output, StringComparison.Ordinal);
        Assert.Equal(5, await ProduceAsync(broker, "after"));
        Assert.EndsWith("1 5\n", await File.ReadAllTextAsync(Path.Combine(broker.DataDir, Topic + "-0", "leader-epoch-checkpoint")), StringComparison.Ordinal);

        // What is left reads back whole: the records before the damage, then the new one.
        using var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = "reader",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build();
        consumer.Assign(new TopicPartitionOffset(Topic, 0, Offset.Beginning));
        var read = new List<(long, string)>();
        while (read.Count == 0 || read[^1].Item2 != "after")
        {
            var result = consumer.Consume(TimeSpan.FromSeconds(10)) ?? throw new TimeoutException($"read so far: {string.Join(",", read)}");
            read.Add((result.Offset.Value, result.Message.Value));
        }

        Assert.Equal(wholeSegment ? [(5L, "after")] : [(0L, "before-0"), (1, "before-1"), (2, "before-2"), (3, "before-3"), (5, "after")], read);
    }

    private static async Task<long> ProduceAsync(BrokerProcess broker, string value)
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, Acks = Acks.All }).Build();
        var result = await producer.ProduceAsync(new TopicPartition(Topic, 0), new Message<Null, string> { Value = value });
        return result.Offset.Value;
    }
}
