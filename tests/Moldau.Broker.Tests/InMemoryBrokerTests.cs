using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>The broker's handlers through the dispatcher (<see cref="BrokerHarness"/>), without sockets.</summary>
public sealed class InMemoryBrokerTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-broker-" + Guid.NewGuid().ToString("N")[..10]);
    private KafkaBroker? _broker;
    private int _correlation;

    private KafkaBroker Broker => _broker!;

    public Task InitializeAsync()
    {
        _broker = new KafkaBroker(
            new BrokerOptions { LogDirs = [_dir], NumPartitions = 2, AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)] },
            NullLoggerFactory.Instance,
            TimeProvider.System);
        _broker.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => BrokerHarness.SendAsync<T>(Broker, ++_correlation, key, version, request);

    [Fact]
    public async Task ApiVersionsListsOnlyImplementedApisWithinStableSpecVersions()
    {
        var response = await Send<ApiVersionsResponse>(ApiKey.ApiVersions, 4, new ApiVersionsRequest());
        foreach (var api in response.ApiKeys)
        {
            var spec = ApiSpecs.Find(api.ApiKey)!;
            var stable = spec.LatestVersionUnstable && !SupportedApis.ReleasedSinceSpecs.Contains(((ApiKey)api.ApiKey, spec.HighestVersion)) ? spec.HighestVersion - 1 : spec.HighestVersion;
            Assert.InRange(api.MaxVersion, api.MinVersion, stable);
            Assert.NotNull(SupportedApis.Find(api.ApiKey));
        }

        Assert.Equal(SupportedApis.All.Count, response.ApiKeys.Count);
    }

    [Fact]
    public async Task MetadataAdvertisesTheConfiguredEndpointAndCreatesTopics()
    {
        var response = await Send<MetadataResponse>(ApiKey.Metadata, 9, new MetadataRequest { Topics = [new() { Name = "t1" }], AllowAutoTopicCreation = true });
        Assert.Equal(("broker.test", 9092), (response.Brokers[0].Host, response.Brokers[0].Port));
        Assert.Equal(2, response.Topics.Single().Partitions.Count);
        Assert.True(File.Exists(Path.Combine(_dir, "t1-1", "partition.metadata")));
    }

    [Fact]
    public async Task ProduceThenFetchThenListOffsets()
    {
        await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "t2" }], AllowAutoTopicCreation = true });
        var batch = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"), 10)]);
        for (var i = 0; i < 3; i++)
        {
            var produce = await Send<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
            {
                Acks = -1,
                TopicData = [new() { Name = "t2", PartitionData = [new() { Index = 1, Records = batch.ToArray() }] }],
            });
            Assert.Equal(i, produce.Responses[0].PartitionResponses[0].BaseOffset);
        }

        var fetch = await Send<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "t2", Partitions = [new() { Partition = 1, FetchOffset = 1, PartitionMaxBytes = 1 << 20 }] }],
        });
        var records = fetch.Responses[0].Partitions[0].Records!.Value;
        Assert.True(2 * batch.Length == records.Length, $"hw {fetch.Responses[0].Partitions[0].HighWatermark} error {fetch.Responses[0].Partitions[0].ErrorCode} length {records.Length}");
        Assert.Equal(1, new RecordBatch(records).BaseOffset);

        var offsets = await Send<ListOffsetsResponse>(ApiKey.ListOffsets, 5, new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "t2", Partitions = [new() { PartitionIndex = 1, Timestamp = -1 }, new() { PartitionIndex = 0, Timestamp = -1 }, new() { PartitionIndex = 9, Timestamp = -1 }] }],
        });
        Assert.Equal([3L, 0L, -1L], offsets.Topics[0].Partitions.Select(p => p.Offset));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, offsets.Topics[0].Partitions[2].ErrorCode);
    }

    [Fact]
    public async Task FetchAsksForASessionAndGetsNone()
    {
        var response = await Send<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest { SessionId = 0, SessionEpoch = 0, MaxBytes = 100 });
        Assert.Equal((0, 0), (response.ErrorCode, response.SessionId));
        var incremental = await Send<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest { SessionId = 1234, SessionEpoch = 5, MaxBytes = 100 });
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, incremental.ErrorCode);
    }

    [Fact]
    public async Task UnparseableAndUnservedRequestsAskToClose()
    {
        var garbage = await BrokerHarness.SendRawAsync(Broker, new byte[] { 0, 3, 0, 12, 0, 0, 0, 1, 0xFF });
        Assert.True(garbage.Closed);
        var unserved = await BrokerHarness.SendRawAsync(Broker, new byte[] { 0, 29, 0, 1, 0, 0, 0, 1, 0, 0 });
        Assert.True(unserved.Closed);
        var tiny = await BrokerHarness.SendRawAsync(Broker, new byte[] { 0, 3 });
        Assert.True(tiny.Closed);
    }
}
