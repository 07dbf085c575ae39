using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

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
            Assert.Equal(0, await CreateTopicAsync(client, "fresh", partitions));
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
            Assert.Equal([$"v{p}"], await FetchAsync(again, "fresh", p));
        }

        Assert.Equal([$"v1"], await FetchAsync(again, "fresh", 1));
        Assert.Equal([$"v2"], await FetchAsync(again, "fresh", 2));
        AssertTopicIdsWritten(broker, "fresh", partitions);
    }

    [Fact]
    public async Task AKillAfterAnAcknowledgedWriteToANewPartitionKeepsIt()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        var acknowledged = new Dictionary<int, List<string>>();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, await CreateTopicAsync(client, "new", 8));
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
            Assert.Equal(acknowledged[p], await FetchAsync(again, "new", p));
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

    private static async Task<short> CreateTopicAsync(KafkaTestClient client, string name, int partitions)
    {
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }],
            TimeoutMs = 60_000,
        });
        return created.Topics.Single().ErrorCode;
    }

    private static async Task<(int Error, long Offset)> ProduceAsync(KafkaTestClient client, string topic, int partition, string value)
    {
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        });
        var p = response.Responses.Single().PartitionResponses.Single();
        return (p.ErrorCode, p.BaseOffset);
    }

    /// <summary>Every record of the partition up to the high watermark.</summary>
    private static async Task<List<string>> FetchAsync(KafkaTestClient client, string topic, int partition)
    {
        var values = new List<string>();
        long next = 0;
        while (true)
        {
            var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
            {
                MaxBytes = 1 << 20,
                SessionEpoch = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = next, PartitionMaxBytes = 1 << 20 }] }],
            });
            var p = response.Responses.Single().Partitions.Single();
            Assert.Equal(0, p.ErrorCode);
            var records = p.Records ?? ReadOnlyMemory<byte>.Empty;
            if (records.IsEmpty)
            {
                return values;
            }

            for (var position = 0; position < records.Length;)
            {
                var size = (int)RecordBatch.DeclaredSize(records.Span[position..]);
                var batch = new RecordBatch(records.Slice(position, size));
                foreach (var r in batch.GetRecords())
                {
                    values.Add(Encoding.UTF8.GetString(r.Value!.Value.Span));
                    next = batch.BaseOffset + r.OffsetDelta + 1;
                }

                position += size;
            }
        }
    }
}
