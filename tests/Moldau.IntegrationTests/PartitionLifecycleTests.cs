using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>
/// Partitions at scale (issue 11): creation is all or nothing (a log that can't be created
/// answers KAFKA_STORAGE_ERROR and leaves no partition behind, offline or not), many partitions
/// come back after a clean stop and serve at once, and a kill -9 after unflushed writes is
/// recovered with log lines saying what is read through and with every acknowledged record.
/// </summary>
public sealed class PartitionLifecycleTests
{
    private const short StorageError = (short)ErrorCode.KafkaStorageError;

    [Fact]
    public async Task ACreationWhoseLogCannotBeCreatedAnswersStorageErrorAndLeavesNothing()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            // chmod doesn't stop root: a file where a partition directory must go does.
            await File.WriteAllTextAsync(Path.Combine(broker.DataDir, "u-2"), "in the way");
            var created = await CreateTopicAsync(client, "u", 4);
            Assert.Equal(StorageError, created.ErrorCode);
            Assert.NotNull(created.ErrorMessage);
            foreach (var i in new[] { 0, 1, 3 })
            {
                Assert.False(Directory.Exists(Path.Combine(broker.DataDir, $"u-{i}")), $"u-{i} was left behind");
            }

            // Auto-creation through Metadata refuses the same way.
            await File.WriteAllTextAsync(Path.Combine(broker.DataDir, "v-0"), "in the way");
            var auto = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "v" }], AllowAutoTopicCreation = true });
            Assert.Equal(StorageError, auto.Topics.Single().ErrorCode);

            // CreatePartitions too: the topic keeps the partitions it had.
            Assert.Equal(0, (await CreateTopicAsync(client, "t", 1)).ErrorCode);
            await File.WriteAllTextAsync(Path.Combine(broker.DataDir, "t-2"), "in the way");
            var grown = await client.SendAsync<CreatePartitionsResponse>(ApiKey.CreatePartitions, 3, new CreatePartitionsRequest
            {
                Topics = [new() { Name = "t", Count = 4 }],
                TimeoutMs = 10_000,
            });
            Assert.Equal(StorageError, grown.Results.Single().ErrorCode);
            Assert.False(Directory.Exists(Path.Combine(broker.DataDir, "t-1")), "t-1 was left behind");
            Assert.Single(broker.Output.Split('\n'), l => l.Contains("u: 4 partition(s) not created", StringComparison.Ordinal));
        }

        // Nothing of it reached the metadata log: after a restart u and v are unknown, t has one partition.
        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var metadata = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "t" }, new() { Name = "u" }, new() { Name = "v" }], AllowAutoTopicCreation = false });
        Assert.Equal(
            [("t", 0, 1), ("u", (int)ErrorCode.UnknownTopicOrPartition, 0), ("v", (int)ErrorCode.UnknownTopicOrPartition, 0)],
            metadata.Topics.Select(t => (t.Name!, (int)t.ErrorCode, t.Partitions.Count)).OrderBy(t => t.Item1));

        // Once the way is clear the same creation works, every partition online.
        File.Delete(Path.Combine(broker.DataDir, "u-2"));
        Assert.Equal(0, (await CreateTopicAsync(again, "u", 4)).ErrorCode);
        for (var i = 0; i < 4; i++)
        {
            Assert.Equal((0, 0L), await ProduceAsync(again, "u", i, $"u-{i}"));
        }
    }

    [Fact]
    public async Task ManyPartitionsServeAsSoonAsTheBrokerListensAfterACleanRestart()
    {
        const int partitions = 500;
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, (await CreateTopicAsync(client, "many", partitions)).ErrorCode);
            for (var i = 0; i < partitions; i += 7)
            {
                Assert.Equal((0, 0L), await ProduceAsync(client, "many", i, $"before-{i}"));
            }
        }

        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        await WaitForOutputAsync(broker, "Moldau started", times: 2);
        Assert.Contains($"opening {partitions} partition logs", broker.Output, StringComparison.Ordinal);

        // Right after the port opens: every partition appends and reads, the old records still there.
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        for (var i = 0; i < partitions; i += 7)
        {
            Assert.Equal((0, 1L), await ProduceAsync(again, "many", i, $"after-{i}"));
            Assert.Equal([$"before-{i}", $"after-{i}"], (await FetchAsync(again, "many", i)).Values);
        }

        Assert.Equal((0, 0L), await ProduceAsync(again, "many", partitions - 1, "last"));
    }

    [Fact]
    public async Task AKillAfterUnflushedWritesIsRecoveredWithLogLinesAndEveryAcknowledgedRecord()
    {
        const int partitions = 20;
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        var acknowledged = new Dictionary<int, List<string>>();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, (await CreateTopicAsync(client, "crash", partitions)).ErrorCode);
            for (var round = 0; round < 5; round++)
            {
                for (var p = 0; p < partitions; p++)
                {
                    var value = $"{p}-{round}-" + new string('x', 2000);
                    var (error, _) = await ProduceAsync(client, "crash", p, value, acks: 1);
                    Assert.Equal(0, error);
                    (acknowledged.TryGetValue(p, out var list) ? list : acknowledged[p] = []).Add(value);
                }
            }
        }

        await broker.KillAsync();
        await broker.RestartAsync();
        await WaitForOutputAsync(broker, "Moldau started", times: 2);
        var output = broker.Output;
        Assert.Contains("was not closed cleanly: ", output, StringComparison.Ordinal);
        Assert.Contains("partition logs to recover", output, StringComparison.Ordinal);
        Assert.Contains("partition logs in ", output, StringComparison.Ordinal);

        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        for (var p = 0; p < partitions; p++)
        {
            var fetched = await FetchAsync(again, "crash", p);
            Assert.Equal(0, fetched.Error);
            Assert.Equal(acknowledged[p], fetched.Values);
        }
    }

    /// <summary>
    /// Waits until the broker printed <paramref name="text"/> <paramref name="times"/> times (the
    /// port accepts before the broker is loaded, and its output arrives asynchronously); fails after 60 s.
    /// </summary>
    internal static async Task WaitForOutputAsync(BrokerProcess broker, string text, int times)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (broker.Output.Split(text).Length - 1 < times)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the broker did not print '{text}':\n{broker.Output}");
            await Task.Delay(50);
        }
    }

    internal static async Task<CreateTopicsResponse.CreatableTopicResult> CreateTopicAsync(KafkaTestClient client, string name, int partitions)
    {
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }],
            TimeoutMs = 30_000,
        });
        return created.Topics.Single();
    }

    internal static async Task<(int Error, long Offset)> ProduceAsync(KafkaTestClient client, string topic, int partition, string value, short acks = -1)
    {
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = acks,
            TimeoutMs = 10_000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        });
        var p = response.Responses.Single().PartitionResponses.Single();
        return (p.ErrorCode, p.BaseOffset);
    }

    /// <summary>Every record of the partition from <paramref name="from"/> up to the high watermark.</summary>
    internal static async Task<(int Error, List<string> Values)> FetchAsync(KafkaTestClient client, string topic, int partition, long from = 0)
    {
        var values = new List<string>();
        var next = from;
        while (true)
        {
            var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
            {
                MaxBytes = 16 << 20,
                SessionEpoch = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = next, PartitionMaxBytes = 16 << 20 }] }],
            });
            var p = response.Responses.Single().Partitions.Single();
            var records = p.Records ?? ReadOnlyMemory<byte>.Empty;
            if (p.ErrorCode != 0 || records.IsEmpty)
            {
                return (p.ErrorCode, values);
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
