using System.Globalization;
using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>A compacted topic on a real broker: the cleaner leaves the latest record of each key at its offset.</summary>
public sealed class CompactionTests
{
    [Fact]
    public async Task OnlyTheLatestRecordOfEachKeyRemainsInClosedSegmentsAtItsOriginalOffset()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["log.cleaner.backoff.ms"] = "100" });
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = "compacted", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "cleanup.policy", Value = "compact" }, new() { Name = "segment.bytes", Value = "500" }] }],
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        const int count = 60;
        for (var i = 0; i < count; i++)
        {
            var batch = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes($"k{i % 4}"), Encoding.UTF8.GetBytes($"v{i}"), now)]);
            var r = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "compacted", PartitionData = [new() { Index = 0, Records = batch }] }] });
            Assert.Equal((0, (long)i), (r.Responses.Single().PartitionResponses.Single().ErrorCode, r.Responses.Single().PartitionResponses.Single().BaseOffset));
        }

        var segments = Directory.GetFiles(Path.Combine(broker.DataDir, "compacted-0"), "*.log")
            .Select(f => long.Parse(Path.GetFileNameWithoutExtension(f), CultureInfo.InvariantCulture))
            .Order()
            .ToList();
        Assert.True(segments.Count > 3);
        var activeBase = segments[^1];
        var latest = Enumerable.Range(0, count).Where(i => i < activeBase).GroupBy(i => i % 4).Select(g => (long)g.Max()).ToHashSet();
        var expected = Enumerable.Range(0, count).Select(i => (long)i).Where(o => o >= activeBase || latest.Contains(o)).Select(o => (o, $"k{o % 4}", $"v{o}")).ToList();

        var records = await FetchAllAsync(client, count);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (DateTime.UtcNow < deadline && records.Count > expected.Count)
        {
            await Task.Delay(100);
            records = await FetchAllAsync(client, count);
        }

        Assert.Equal(expected, records);
        Assert.Contains("cleaner: compacted-0", broker.Output, StringComparison.Ordinal);

        // How far it was cleaned is in Kafka's cleaner-offset-checkpoint (read back at start-up),
        // and the compacted log is served the same after a restart.
        Assert.Equal(0, await broker.StopAsync());
        var checkpoint = await File.ReadAllTextAsync(Path.Combine(broker.DataDir, "cleaner-offset-checkpoint"));
        Assert.Contains($"compacted 0 {activeBase}\n", checkpoint, StringComparison.Ordinal);
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        Assert.Equal(expected, await FetchAllAsync(again, count));
    }

    private static async Task<List<(long Offset, string Key, string Value)>> FetchAllAsync(KafkaTestClient client, long end)
    {
        var records = new List<(long, string, string)>();
        long offset = 0;
        while (offset < end)
        {
            var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
            {
                MaxBytes = 1 << 20,
                SessionEpoch = -1,
                Topics = [new() { Topic = "compacted", Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
            });
            var p = fetch.Responses.Single().Partitions.Single();
            Assert.Equal(0, p.ErrorCode);
            var bytes = p.Records ?? ReadOnlyMemory<byte>.Empty;
            Assert.False(bytes.IsEmpty, $"nothing fetched at {offset}");
            var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
            while (batches.MoveNext())
            {
                var batch = new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength));
                foreach (var r in batch.GetRecords())
                {
                    records.Add((batch.BaseOffset + r.OffsetDelta, Encoding.UTF8.GetString(r.Key!.Value.Span), Encoding.UTF8.GetString(r.Value!.Value.Span)));
                }

                offset = batch.LastOffset + 1;
            }
        }

        return records;
    }
}
