using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Tests.Shared;

namespace Moldau.Broker.Tests;

/// <summary>
/// ListOffsets by timestamp over a stored batch it cannot read (stored before validation existed):
/// the batch is passed over and the answer comes from the next one, instead of the request failing
/// or the batch being inflated whole.
/// </summary>
public sealed class UnreadableBatchListOffsetsTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-broker-" + Guid.NewGuid().ToString("N")[..10]);
    private KafkaBroker? _broker;

    public Task InitializeAsync()
    {
        _broker = new KafkaBroker(
            new BrokerOptions { LogDirs = [_dir], NumPartitions = 1, AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)] },
            NullLoggerFactory.Instance,
            TimeProvider.System);
        _broker.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _broker!.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Theory]
    [InlineData("lz4 frame with a dictionary id")]
    [InlineData("snappy length overflowing int32")]
    [InlineData("zstd bomb: 1 GiB")]
    public async Task AnUnreadableBatchIsPassedOver(string name)
    {
        await BrokerHarness.SendAsync<MetadataResponse>(_broker!, 1, ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "ts" }], AllowAutoTopicCreation = true });
        var state = _broker!.State;
        var partition = state.Topics.Find("ts")!.Partition(0)!;
        var log = state.Topics.LogOf(partition)!;

        // Stamped 1_700_000_000_000 (HostileBatches' base and max timestamp), written under the validator.
        log.Append(HostileBatches.All().Single(c => c.Name == name).Batch.AsSpan(), partition.LeaderEpoch);
        var good = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"), 1_700_000_000_005)]);
        var produce = await BrokerHarness.SendAsync<ProduceResponse>(_broker, 2, ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TopicData = [new() { Name = "ts", PartitionData = [new() { Index = 0, Records = good }] }],
        });
        var goodOffset = produce.Responses[0].PartitionResponses[0].BaseOffset;
        Assert.True(goodOffset > 0);

        var offsets = await BrokerHarness.SendAsync<ListOffsetsResponse>(_broker, 3, ApiKey.ListOffsets, 5, new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "ts", Partitions = [new() { PartitionIndex = 0, Timestamp = 1_700_000_000_000 }] }],
        });
        var answer = offsets.Topics[0].Partitions[0];
        Assert.Equal((0, goodOffset, 1_700_000_000_005L), (answer.ErrorCode, answer.Offset, answer.Timestamp));
    }
}
