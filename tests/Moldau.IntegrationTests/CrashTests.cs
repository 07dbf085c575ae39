using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>
/// kill -9 at a random moment while acks=all produces run: every acknowledged record is there at
/// its acknowledged offset after the restart, offsets stay contiguous, and appends continue.
/// MOLDAU_CRASH_CYCLES sets the number of cycles (20 by default; 200 for a long run).
/// </summary>
public sealed class CrashTests
{
    [Fact]
    public async Task AcknowledgedWritesSurviveSigkill()
    {
        var cycles = int.TryParse(Environment.GetEnvironmentVariable("MOLDAU_CRASH_CYCLES"), out var n) ? n : 20;
        var random = new Random(1234);
        var acknowledged = new Dictionary<long, string>();
        await using var broker = await BrokerProcess.StartAsync();
        for (var cycle = 0; cycle < cycles; cycle++)
        {
            var producers = Enumerable.Range(0, 2).Select(p => ProduceUntilKilledAsync(broker.Port, $"c{cycle}-p{p}", acknowledged)).ToList();
            await Task.Delay(random.Next(20, 250));
            await broker.KillAsync();
            await Task.WhenAll(producers);
            await broker.RestartAsync();
            await VerifyAsync(broker.Port, acknowledged, cycle);
        }

        Assert.True(acknowledged.Count > cycles, $"only {acknowledged.Count} records were acknowledged in {cycles} cycles");
    }

    private static async Task ProduceUntilKilledAsync(int port, string prefix, Dictionary<long, string> acknowledged)
    {
        try
        {
            await using var client = await KafkaTestClient.ConnectAsync(port);
            await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "crash" }], AllowAutoTopicCreation = true });
            for (var i = 0; ; i++)
            {
                var values = Enumerable.Range(0, 1 + (i % 4)).Select(j => $"{prefix}-{i}-{j}").ToList();
                var batch = RecordBatchBuilder.Build(values.Select(v => new RecordToWrite(null, Encoding.UTF8.GetBytes(v), 1)).ToList());
                var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
                {
                    Acks = -1,
                    TimeoutMs = 10000,
                    TopicData = [new() { Name = "crash", PartitionData = [new() { Index = 0, Records = batch }] }],
                });
                var p = response.Responses.Single().PartitionResponses.Single();
                Assert.Equal(0, p.ErrorCode);
                lock (acknowledged)
                {
                    for (var j = 0; j < values.Count; j++)
                    {
                        acknowledged.Add(p.BaseOffset + j, values[j]);
                    }
                }
            }
        }
        catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidDataException or ObjectDisposedException)
        {
            // The broker was killed mid-request: that request was never acknowledged.
        }
    }

    private static async Task VerifyAsync(int port, Dictionary<long, string> acknowledged, int cycle)
    {
        await using var client = await KafkaTestClient.ConnectAsync(port);
        var stored = new Dictionary<long, string>();
        long next = 0;
        long highWatermark;
        do
        {
            var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
            {
                MaxBytes = 1 << 24,
                SessionEpoch = -1,
                Topics = [new() { Topic = "crash", Partitions = [new() { Partition = 0, FetchOffset = next, PartitionMaxBytes = 1 << 24 }] }],
            });
            var p = fetch.Responses.Single().Partitions.Single();
            if (p.ErrorCode == (short)ErrorCode.UnknownTopicOrPartition && acknowledged.Count == 0)
            {
                return;
            }

            Assert.Equal(0, p.ErrorCode);
            highWatermark = p.HighWatermark;
            var bytes = p.Records!.Value;
            var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: true);
            while (batches.MoveNext())
            {
                var batch = new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength));
                Assert.True(batch.BaseOffset == next, $"cycle {cycle}: batch at {batch.BaseOffset}, expected {next}");
                foreach (var r in batch.GetRecords())
                {
                    stored[batch.BaseOffset + r.OffsetDelta] = Encoding.UTF8.GetString(r.Value!.Value.Span);
                }

                next = batch.LastOffset + 1;
            }

            Assert.True(batches.ValidEnd == bytes.Length, $"cycle {cycle}: a partial batch was served");
        }
        while (next < highWatermark);

        lock (acknowledged)
        {
            foreach (var (offset, value) in acknowledged)
            {
                Assert.True(stored.TryGetValue(offset, out var found) && found == value, $"cycle {cycle}: acknowledged record {value} at {offset} is {(found is null ? "missing" : found)}");
            }
        }
    }
}
