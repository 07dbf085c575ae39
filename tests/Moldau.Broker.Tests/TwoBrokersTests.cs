using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>
/// Two brokers in one process, each with its own storage runtime: one stops (and disposes its
/// runtime) while the other goes on producing with acks=all and fetching.
/// </summary>
public sealed class TwoBrokersTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-two-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private KafkaBroker Start(string name)
    {
        var broker = new KafkaBroker(
            new BrokerOptions { LogDirs = [Path.Combine(_root, name)], NumPartitions = 1, AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)] },
            NullLoggerFactory.Instance,
            TimeProvider.System);
        broker.Start();
        return broker;
    }

    private static async Task<long> Produce(KafkaBroker broker, int correlation, string value)
    {
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), 10)]);
        var produce = await BrokerHarness.SendAsync<ProduceResponse>(broker, correlation, ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30_000,
            TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        var partition = produce.Responses[0].PartitionResponses[0];
        Assert.Equal((short)ErrorCode.None, partition.ErrorCode);
        return partition.BaseOffset;
    }

    private static async Task<List<string>> FetchAll(KafkaBroker broker, int correlation)
    {
        var fetch = await BrokerHarness.SendAsync<FetchResponse>(broker, correlation, ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "t", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        var records = fetch.Responses[0].Partitions[0].Records!.Value;
        var values = new List<string>();
        for (var at = 0; at < records.Length;)
        {
            var batch = new RecordBatch(records.Slice(at, (int)RecordBatch.DeclaredSize(records.Span[at..])));
            foreach (var record in batch.GetRecords())
            {
                values.Add(Encoding.UTF8.GetString(record.Value!.Value.Span));
            }

            at += batch.TotalSize;
        }

        return values;
    }

    [Fact]
    public async Task OneBrokerStopsWhileTheOtherGoesOn()
    {
        var a = Start("a");
        await using var b = Start("b");
        Assert.NotSame(a.Storage, b.Storage);
        foreach (var broker in new[] { a, b })
        {
            await BrokerHarness.SendAsync<MetadataResponse>(broker, 1, ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "t" }], AllowAutoTopicCreation = true });
            Assert.Equal(0, await Produce(broker, 2, "first"));
        }

        await a.DisposeAsync();
        Assert.True(a.Storage.IsDisposed);
        Assert.False(b.Storage.IsDisposed);

        for (var i = 1; i <= 5; i++)
        {
            Assert.Equal(i, await Produce(b, 10 + i, $"after-{i}"));
        }

        Assert.Equal(["first", "after-1", "after-2", "after-3", "after-4", "after-5"], await FetchAll(b, 20));

        // The stopped broker's data is all there for the next start, on a runtime of its own.
        await using var again = Start("a");
        Assert.Equal(["first"], await FetchAll(again, 30));
    }
}
