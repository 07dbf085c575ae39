using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>
/// Produce and Fetch reuse their request and response objects from one request to the next:
/// requests of different shapes and versions in turn, and requests in flight together, each get
/// exactly their own answer.
/// </summary>
public sealed class ReusedRequestTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-reuse-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly byte[] _batch = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"), 10)]);
    private KafkaBroker? _broker;
    private int _correlation;

    public Task InitializeAsync()
    {
        _broker = new KafkaBroker(
            new BrokerOptions { LogDirs = [_dir], NumPartitions = 3, AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)] },
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

    private async Task CreateTopicsAsync(params string[] names) =>
        await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [.. names.Select(n => new MetadataRequest.MetadataRequestTopic { Name = n })], AllowAutoTopicCreation = true });

    private ProduceRequest.PartitionProduceData Partition(int index) => new() { Index = index, Records = _batch.ToArray() };

    private Task<ProduceResponse> ProduceAsync(short version, short acks, params (string Topic, int[] Partitions)[] topics) =>
        Send<ProduceResponse>(ApiKey.Produce, version, new ProduceRequest
        {
            Acks = acks,
            TimeoutMs = 30000,
            TopicData = [.. topics.Select(t => new ProduceRequest.TopicProduceData { Name = t.Topic, PartitionData = [.. t.Partitions.Select(Partition)] })],
        });

    [Fact]
    public async Task ProducesOfDifferentShapesInTurnEachGetOnlyTheirOwnAnswer()
    {
        await CreateTopicsAsync("a", "b");
        var expectedOffset = new Dictionary<(string, int), long>();

        void AssertAppended(ProduceResponse.TopicProduceResponse topic, int index, ProduceResponse.PartitionProduceResponse p)
        {
            Assert.Equal(index, p.Index);
            Assert.Equal((short)ErrorCode.None, p.ErrorCode);
            var key = (topic.Name, index);
            Assert.Equal(expectedOffset.GetValueOrDefault(key), p.BaseOffset);
            expectedOffset[key] = p.BaseOffset + 1;
            Assert.Equal(-1, p.LogAppendTimeMs);
            Assert.Equal(0, p.LogStartOffset);
            Assert.Empty(p.RecordErrors);
        }

        for (var round = 0; round < 3; round++)
        {
            var big = await ProduceAsync(11, 1, ("a", [0, 1, 2]), ("b", [0]), ("missing", [0]));
            Assert.Equal(["a", "b", "missing"], big.Responses.Select(t => t.Name));
            Assert.Equal(3, big.Responses[0].PartitionResponses.Count);
            for (var i = 0; i < 3; i++)
            {
                AssertAppended(big.Responses[0], i, big.Responses[0].PartitionResponses[i]);
            }

            AssertAppended(big.Responses[1], 0, Assert.Single(big.Responses[1].PartitionResponses));
            var missing = Assert.Single(big.Responses[2].PartitionResponses);
            Assert.Equal(((short)ErrorCode.UnknownTopicOrPartition, -1L, -1L), (missing.ErrorCode, missing.BaseOffset, missing.LogStartOffset));

            // Non-flexible, fewer topics and partitions, acks=all.
            var small = await ProduceAsync(7, -1, ("b", [2]));
            var topic = Assert.Single(small.Responses);
            Assert.Equal("b", topic.Name);
            AssertAppended(topic, 2, Assert.Single(topic.PartitionResponses));

            var refused = await ProduceAsync(9, 5, ("a", [1]));
            var p = Assert.Single(Assert.Single(refused.Responses).PartitionResponses);
            Assert.Equal(((short)ErrorCode.InvalidRequiredAcks, -1L), (p.ErrorCode, p.BaseOffset));
        }
    }

    [Fact]
    public async Task FetchesOfDifferentShapesInTurnEachGetOnlyTheirOwnAnswer()
    {
        await CreateTopicsAsync("f");
        for (var i = 0; i < 3; i++)
        {
            await ProduceAsync(11, -1, ("f", [0, 1]));
        }

        FetchRequest Request(sbyte isolation, params (string Topic, int Partition, long Offset)[] partitions) => new()
        {
            MaxWaitMs = 0,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            IsolationLevel = isolation,
            Topics = [.. partitions.GroupBy(p => p.Topic).Select(g => new FetchRequest.FetchTopic
            {
                Topic = g.Key,
                Partitions = [.. g.Select(p => new FetchRequest.FetchPartition { Partition = p.Partition, FetchOffset = p.Offset, PartitionMaxBytes = 1 << 20 })],
            })],
        };

        for (var round = 0; round < 3; round++)
        {
            var both = await Send<FetchResponse>(ApiKey.Fetch, 12, Request(1, ("f", 0, 0), ("f", 1, 2)));
            var topic = Assert.Single(both.Responses);
            Assert.Equal("f", topic.Topic);
            Assert.Equal([0, 1], topic.Partitions.Select(p => p.PartitionIndex));
            Assert.Equal(3 * _batch.Length, topic.Partitions[0].Records!.Value.Length);
            Assert.Equal(_batch.Length, topic.Partitions[1].Records!.Value.Length);
            Assert.Equal(2, new RecordBatch(topic.Partitions[1].Records!.Value).BaseOffset);
            Assert.All(topic.Partitions, p => Assert.Equal((short)ErrorCode.None, p.ErrorCode));
            Assert.All(topic.Partitions, p => Assert.Equal((3L, 3L, 0L), (p.HighWatermark, p.LastStableOffset, p.LogStartOffset)));
            Assert.All(topic.Partitions, p => Assert.Empty(p.AbortedTransactions!)); // read_committed: an empty list

            // read_uncommitted (no aborted transactions: null), an unknown topic, an offset past the end.
            var errors = await Send<FetchResponse>(ApiKey.Fetch, 12, Request(0, ("nope", 0, 0), ("f", 1, 99)));
            Assert.Equal(["nope", "f"], errors.Responses.Select(t => t.Topic));
            var unknown = Assert.Single(errors.Responses[0].Partitions);
            Assert.Equal(((short)ErrorCode.UnknownTopicOrPartition, -1L, -1L, -1L), (unknown.ErrorCode, unknown.HighWatermark, unknown.LastStableOffset, unknown.LogStartOffset));
            Assert.Equal(0, unknown.Records!.Value.Length);
            var outOfRange = Assert.Single(errors.Responses[1].Partitions);
            Assert.Equal(((short)ErrorCode.OffsetOutOfRange, 1), (outOfRange.ErrorCode, outOfRange.PartitionIndex));
            Assert.Equal(0, outOfRange.Records!.Value.Length);
            Assert.All(errors.Responses.SelectMany(t => t.Partitions), p => Assert.Null(p.AbortedTransactions));
            Assert.All(errors.Responses.SelectMany(t => t.Partitions), p => Assert.Equal((-1, -1), (p.CurrentLeader.LeaderId, p.CurrentLeader.LeaderEpoch)));

            var session = await Send<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest { SessionId = 7, SessionEpoch = 1, MaxBytes = 100 });
            Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, session.ErrorCode);
            Assert.Empty(session.Responses);
        }
    }

    [Fact]
    public async Task RequestsInFlightTogetherKeepTheirOwnState()
    {
        await CreateTopicsAsync("w");
        await ProduceAsync(11, -1, ("w", [0]));

        // A long poll at the end of w-2 stays in flight while other requests come and go.
        var longPoll = Send<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxWaitMs = 30_000,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "w", Partitions = [new() { Partition = 2, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        Assert.False(longPoll.IsCompleted);

        var other = await Send<FetchResponse>(ApiKey.Fetch, 11, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "w", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        Assert.Equal(_batch.Length, Assert.Single(Assert.Single(other.Responses).Partitions).Records!.Value.Length);
        Assert.False(longPoll.IsCompleted);

        var produced = await ProduceAsync(11, -1, ("w", [2, 1]));
        Assert.Equal([2, 1], Assert.Single(produced.Responses).PartitionResponses.Select(p => p.Index));

        var woken = await longPoll.WaitAsync(TimeSpan.FromSeconds(20));
        var partition = Assert.Single(Assert.Single(woken.Responses).Partitions);
        Assert.Equal((2, (short)ErrorCode.None, 1L), (partition.PartitionIndex, partition.ErrorCode, partition.HighWatermark));
        Assert.Equal(_batch.Length, partition.Records!.Value.Length);
    }
}
