using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage.Tests.Contract;

namespace Moldau.Broker.Tests;

/// <summary>
/// The broker's handlers over a partition whose log is not the local one (the test-only
/// <see cref="InMemoryPartitionLog"/>): they reach storage only through <c>IPartitionLog</c>, so a
/// second backend serves Produce, Fetch, ListOffsets, DeleteRecords and OffsetForLeaderEpoch as is.
/// </summary>
public sealed class SecondBackendTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-broker-" + Guid.NewGuid().ToString("N")[..10]);
    private KafkaBroker? _broker;
    private int _correlation;

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

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => BrokerHarness.SendAsync<T>(_broker!, ++_correlation, key, version, request);

    private Task<ProduceResponse> Produce(short acks, long timestamp) =>
        Send<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = acks,
            TimeoutMs = 30_000,
            TopicData = [new() { Name = "mem", PartitionData = [new() { Index = 0, Records = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes($"v{timestamp}"), timestamp)]) }] }],
        });

    private Task<FetchResponse> Fetch(long offset, int maxWaitMs) =>
        Send<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxWaitMs = maxWaitMs,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "mem", Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
        });

    private async Task<ListOffsetsResponse.ListOffsetsPartitionResponse> ListOffset(long timestamp) =>
        (await Send<ListOffsetsResponse>(ApiKey.ListOffsets, 5, new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "mem", Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp }] }],
        })).Topics[0].Partitions[0];

    [Fact]
    public async Task HandlersServeAPartitionWhoseLogIsAnotherImplementation()
    {
        await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "mem" }], AllowAutoTopicCreation = true });
        var partition = _broker!.State.Topics.Find("mem")!.Partition(0)!;
        var local = partition.Log!;
        var memory = new InMemoryPartitionLog(TimeSpan.FromMinutes(10), local.Directory);
        partition.Host.Log = memory;
        local.Dispose();

        // acks=all: answered once the in-memory log says the batch is durable.
        for (var i = 0; i < 3; i++)
        {
            var produced = (await Produce(acks: -1, timestamp: 1000 + i)).Responses[0].PartitionResponses[0];
            Assert.Equal((0, (long)i, 0L), (produced.ErrorCode, produced.BaseOffset, produced.LogStartOffset));
        }

        Assert.Equal((3L, 3L), (memory.HighWatermark, memory.LogEndOffset));

        // acks=1 leaves the batch above the high watermark (a long linger): a fetch waiting there
        // asks for durability and is woken when the high watermark moves.
        Assert.Equal(3, (await Produce(acks: 1, timestamp: 5000)).Responses[0].PartitionResponses[0].BaseOffset);
        Assert.Equal(3, memory.HighWatermark);
        var waited = (await Fetch(3, maxWaitMs: 20_000)).Responses[0].Partitions[0];
        Assert.Equal((0, 4L), (waited.ErrorCode, waited.HighWatermark));
        Assert.Equal(3, new RecordBatch(waited.Records!.Value).BaseOffset);

        var all = (await Fetch(0, maxWaitMs: 0)).Responses[0].Partitions[0].Records!.Value;
        var offsets = new List<long>();
        for (var at = 0; at < all.Length;)
        {
            var batch = new RecordBatch(all[at..]);
            offsets.Add(batch.BaseOffset);
            at += batch.TotalSize;
        }

        Assert.Equal([0L, 1L, 2L, 3L], offsets);

        Assert.Equal(4, (await ListOffset(-1)).Offset);
        var max = await ListOffset(-3);
        Assert.Equal((3L, 5000L), (max.Offset, max.Timestamp));
        var byTime = await ListOffset(1002);
        Assert.Equal((2L, 1002L), (byTime.Offset, byTime.Timestamp));

        var deleted = await Send<DeleteRecordsResponse>(ApiKey.DeleteRecords, 2, new DeleteRecordsRequest
        {
            TimeoutMs = 1000,
            Topics = [new() { Name = "mem", Partitions = [new() { PartitionIndex = 0, Offset = 2 }] }],
        });
        Assert.Equal((0, 2L), (deleted.Topics[0].Partitions[0].ErrorCode, deleted.Topics[0].Partitions[0].LowWatermark));
        Assert.Equal(2, (await ListOffset(-2)).Offset);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, (await Fetch(1, maxWaitMs: 0)).Responses[0].Partitions[0].ErrorCode);

        var epochs = await Send<OffsetForLeaderEpochResponse>(ApiKey.OffsetForLeaderEpoch, 4, new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics = [new() { Topic = "mem", Partitions = [new() { Partition = 0, CurrentLeaderEpoch = -1, LeaderEpoch = partition.LeaderEpoch }] }],
        });
        Assert.Equal((partition.LeaderEpoch, 4L), (epochs.Topics[0].Partitions[0].LeaderEpoch, epochs.Topics[0].Partitions[0].EndOffset));

        // Nothing reached the local log.
        Assert.Equal(0, local.LogEndOffset);
    }
}
