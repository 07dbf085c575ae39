using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>Time and size retention delete whole closed segments and move the log start offset.</summary>
public sealed class RetentionTests
{
    [Fact]
    public async Task OldSegmentsAndSegmentsBeyondTheSizeLimitGo()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["log.retention.check.interval.ms"] = "100" });
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics =
            [
                new() { Name = "by-time", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "segment.bytes", Value = "1000" }, new() { Name = "retention.ms", Value = "60000" }] },
                new() { Name = "by-size", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "segment.bytes", Value = "1000" }, new() { Name = "retention.bytes", Value = "3000" }] },
                new() { Name = "kept", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "segment.bytes", Value = "1000" }, new() { Name = "retention.ms", Value = "-1" }] },
            ],
        });
        Assert.All(created.Topics, t => Assert.Equal(0, t.ErrorCode));

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        foreach (var topic in new[] { "by-time", "by-size", "kept" })
        {
            for (var i = 0; i < 20; i++)
            {
                // The first ten batches are an hour old; the rest are new.
                var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(new string('x', 300)), i < 10 ? now - 3_600_000 : now)]);
                var r = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest { Acks = -1, TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }] });
                Assert.Equal(0, r.Responses.Single().PartitionResponses.Single().ErrorCode);
            }
        }

        async Task<long> Earliest(string topic)
        {
            var offsets = await client.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -2 }] }] });
            return offsets.Topics.Single().Partitions.Single().Offset;
        }

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && (await Earliest("by-time") < 10 || await Earliest("by-size") < 10))
        {
            await Task.Delay(100);
        }

        // Every old record went, no new one did (segments hold ~2 batches, so the start lands on 10).
        Assert.Equal(10, await Earliest("by-time"));
        var bySize = await Earliest("by-size");
        Assert.InRange(bySize, 10, 20);
        Assert.True(Directory.GetFiles(Path.Combine(broker.DataDir, "by-size-0"), "*.log").Sum(SegmentFile.DataLength) < 4000);
        Assert.Equal(0, await Earliest("kept"));
        Assert.Contains("by-time 0 10", await File.ReadAllTextAsync(Path.Combine(broker.DataDir, "log-start-offset-checkpoint")), StringComparison.Ordinal);

        // The log start survives a restart (the checkpoint), and fetching below it is out of range.
        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var fetch = await again.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "by-time", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        var p = fetch.Responses.Single().Partitions.Single();
        Assert.Equal(((short)ErrorCode.OffsetOutOfRange, 10L), (p.ErrorCode, p.LogStartOffset));
    }
}
