using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;
using static Moldau.IntegrationTests.PartitionLifecycleTests;

namespace Moldau.IntegrationTests;

/// <summary>
/// Creating a partition fsyncs none of its own files (issue 11: the log dir once per CreateTopics,
/// the metadata records once; each new log at its first flush). A kill -9 right after a
/// CreateTopics of many partitions leaves every partition there, online and writable after the
/// restart; a kill -9 after an acknowledged acks=all write to a new partition keeps the write; and
/// once written to and closed, the partition directory holds what Kafka's does.
/// </summary>
public sealed class PartitionCreationCrashTests
{
    [Fact]
    public async Task AKillRightAfterCreatingManyPartitionsLeavesThemAllOnlineAndWritable()
    {
        const int partitions = 300;
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, (await CreateTopicAsync(client, "fresh", partitions)).ErrorCode);
        }

        // Nothing was written to them: no flush has made their files durable yet.
        Assert.False(File.Exists(Path.Combine(broker.DataDir, "fresh-0", LeaderEpochCache.FileName)), "the new log's leader-epoch checkpoint was written before its first flush");
        await broker.KillAsync();

        // The worst a power loss could leave of an unsynced partition: a directory without files,
        // and (had the log dir not been synced) no directory at all.
        foreach (var file in Directory.GetFiles(Path.Combine(broker.DataDir, "fresh-1")))
        {
            File.Delete(file);
        }

        Directory.Delete(Path.Combine(broker.DataDir, "fresh-2"), recursive: true);

        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        await WaitAllOnlineAsync(again, broker, "fresh", partitions);
        for (var p = 0; p < partitions; p++)
        {
            Assert.Equal((0, 0L), await ProduceAsync(again, "fresh", p, $"v{p}"));
        }

        for (var p = 0; p < partitions; p += 37)
        {
            Assert.Equal([$"v{p}"], await ValuesAsync(again, "fresh", p));
        }

        Assert.Equal([$"v1"], await ValuesAsync(again, "fresh", 1));
        Assert.Equal([$"v2"], await ValuesAsync(again, "fresh", 2));
        AssertTopicIdsWritten(broker, "fresh", partitions);
    }

    [Fact]
    public async Task AKillAfterAnAcknowledgedWriteToANewPartitionKeepsIt()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        var acknowledged = new Dictionary<int, List<string>>();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, (await CreateTopicAsync(client, "new", 8)).ErrorCode);
            for (var round = 0; round < 3; round++)
            {
                for (var p = 0; p < 8; p++)
                {
                    var value = $"{p}-{round}";
                    Assert.Equal((0, (long)round), await ProduceAsync(client, "new", p, value));
                    (acknowledged.TryGetValue(p, out var list) ? list : acknowledged[p] = []).Add(value);
                }
            }
        }

        // The first flush (the first acks=all write) made the new log's files durable, Kafka's layout.
        var dir = Path.Combine(broker.DataDir, "new-0");
        Assert.Equal("0\n1\n0 0\n", await File.ReadAllTextAsync(Path.Combine(dir, LeaderEpochCache.FileName)));
        Assert.NotNull(PartitionMetadataFile.Read(dir));
        Assert.True(File.Exists(Path.Combine(dir, "00000000000000000000.index")));
        Assert.True(File.Exists(Path.Combine(dir, "00000000000000000000.timeindex")));

        await broker.KillAsync();
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        await WaitAllOnlineAsync(again, broker, "new", 8);
        for (var p = 0; p < 8; p++)
        {
            Assert.Equal(acknowledged[p], await ValuesAsync(again, "new", p));
            Assert.Equal((0, 3L), await ProduceAsync(again, "new", p, "after"));
        }

        AssertTopicIdsWritten(broker, "new", 8);
    }

    /// <summary>Every partition is listed without an error.</summary>
    private static async Task WaitAllOnlineAsync(KafkaTestClient client, BrokerProcess broker, string topic, int partitions)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = false });
            var listed = metadata.Topics.Single();
            if (listed.ErrorCode == 0 && listed.Partitions.Count == partitions && listed.Partitions.All(p => p.ErrorCode == 0))
            {
                break;
            }

            Assert.True(DateTime.UtcNow < deadline, $"{topic} not online after the restart:\n{broker.Output}");
            await Task.Delay(50);
        }

    }

    /// <summary>
    /// The topic's id is in every partition's directory, written again where a crash left none once
    /// the log was opened (logs open in the background or on first use, after the listing).
    /// </summary>
    private static void AssertTopicIdsWritten(BrokerProcess broker, string topic, int partitions)
    {
        for (var p = 0; p < partitions; p++)
        {
            Assert.NotNull(PartitionMetadataFile.Read(Path.Combine(broker.DataDir, $"{topic}-{p}")));
        }
    }

    /// <summary>Every record of the partition, fetched without an error.</summary>
    private static async Task<List<string>> ValuesAsync(KafkaTestClient client, string topic, int partition)
    {
        var (error, values) = await FetchAsync(client, topic, partition);
        Assert.Equal(0, error);
        return values;
    }
}
