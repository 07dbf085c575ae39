using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

[Collection(BrokerCollection.Name)]
public sealed class ProduceFetchTests(SharedBroker shared)
{
    private static byte[] Batch(int count, string prefix = "v", long timestamp = 1_700_000_000_000) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, count)
            .Select(i => new RecordToWrite(Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"{prefix}{i}"), timestamp + i))
            .ToList());

    private async Task<(KafkaTestClient Client, MetadataResponse.MetadataResponseTopic Topic)> NewTopicAsync()
    {
        var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var name = "pf-" + Guid.NewGuid().ToString("N")[..10];
        var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = name }], AllowAutoTopicCreation = true });
        return (client, metadata.Topics.Single());
    }

    private static ProduceRequest Produce(string topic, short acks, params byte[][] batches) => new()
    {
        Acks = acks,
        TimeoutMs = 5000,
        TopicData = [new ProduceRequest.TopicProduceData
        {
            Name = topic,
            PartitionData = batches.Select(b => new ProduceRequest.PartitionProduceData { Index = 0, Records = b }).ToList(),
        }],
    };

    private static FetchRequest Fetch(MetadataResponse.MetadataResponseTopic topic, long offset, short version, int maxWaitMs = 0, int minBytes = 0, int partitionMaxBytes = 1 << 20, int maxBytes = 50 << 20) => new()
    {
        MaxWaitMs = maxWaitMs,
        MinBytes = minBytes,
        MaxBytes = maxBytes,
        SessionEpoch = -1,
        Topics = [new FetchRequest.FetchTopic
        {
            Topic = topic.Name!,
            TopicId = topic.TopicId,
            Partitions = [new FetchRequest.FetchPartition { Partition = 0, FetchOffset = offset, PartitionMaxBytes = partitionMaxBytes }],
        }],
    };

    [Theory]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(11)]
    public async Task ProducedBatchesGetOffsetsAndLandInTheSegmentFile(short version)
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        var first = Batch(3);
        var r1 = await client.SendAsync<ProduceResponse>(ApiKey.Produce, version, Produce(topic.Name!, -1, first));
        var p1 = r1.Responses.Single().PartitionResponses.Single();
        Assert.Equal((0, 0L, -1L), (p1.ErrorCode, p1.BaseOffset, p1.LogAppendTimeMs));
        if (version >= 5)
        {
            Assert.Equal(0, p1.LogStartOffset);
        }

        var r2 = await client.SendAsync<ProduceResponse>(ApiKey.Produce, version, Produce(topic.Name!, 1, Batch(2)));
        Assert.Equal(3, r2.Responses.Single().PartitionResponses.Single().BaseOffset);

        // The batch is in the file, readable by another process, once the response is out; only
        // the base offset and the leader epoch differ from what the client sent.
        var file = Path.Combine(shared.Broker.DataDir, topic.Name + "-0", "00000000000000000000.log");
        var stored = await SegmentFile.ReadBatchesAsync(file);
        Assert.Equal(first.Length + Batch(2).Length, stored.Length);
        Assert.Equal(first.AsSpan(16).ToArray(), stored.AsSpan(16, first.Length - 16).ToArray());
        Assert.Equal(0, new RecordBatch(stored.AsMemory(0, first.Length)).PartitionLeaderEpoch);
        Assert.Equal(3, new RecordBatch(stored.AsMemory(first.Length)).BaseOffset);
        Assert.True(new RecordBatch(stored.AsMemory(first.Length)).IsCrcValid());
    }

    [Theory]
    [InlineData(4)]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(16)]
    [InlineData(17)]
    public async Task FetchReturnsTheStoredBytesFromTheBatchHoldingTheOffset(short version)
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, Batch(3)));
        await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, Batch(4)));
        var file = await SegmentFile.ReadBatchesAsync(Path.Combine(shared.Broker.DataDir, topic.Name + "-0", "00000000000000000000.log"));

        var all = await client.SendAsync<FetchResponse>(ApiKey.Fetch, version, Fetch(topic, 0, version));
        var p = all.Responses.Single().Partitions.Single();
        Assert.Equal((0, 7L, 7L), (p.ErrorCode, p.HighWatermark, p.LastStableOffset));
        if (version >= 5)
        {
            Assert.Equal(0, p.LogStartOffset);
        }

        Assert.Equal(file, p.Records!.Value.ToArray());
        if (version >= 13)
        {
            Assert.Equal(topic.TopicId, all.Responses.Single().TopicId);
        }
        else
        {
            Assert.Equal(topic.Name, all.Responses.Single().Topic);
        }

        // Offset 5 is inside the second batch (3..6): the whole second batch comes back.
        var middle = await client.SendAsync<FetchResponse>(ApiKey.Fetch, version, Fetch(topic, 5, version));
        var records = middle.Responses.Single().Partitions.Single().Records!.Value;
        Assert.Equal(3, new RecordBatch(records).BaseOffset);
        Assert.Equal(file.AsSpan(file.Length - records.Length).ToArray(), records.ToArray());

        // At the log end: no records, no error.
        var end = await client.SendAsync<FetchResponse>(ApiKey.Fetch, version, Fetch(topic, 7, version));
        var atEnd = end.Responses.Single().Partitions.Single();
        Assert.Equal(0, atEnd.ErrorCode);
        Assert.Equal(0, atEnd.Records?.Length ?? 0);

        // Beyond it: OFFSET_OUT_OF_RANGE.
        var beyond = await client.SendAsync<FetchResponse>(ApiKey.Fetch, version, Fetch(topic, 8, version));
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, beyond.Responses.Single().Partitions.Single().ErrorCode);
    }

    [Fact]
    public async Task AtLeastOneBatchComesBackEvenWhenLargerThanTheLimits()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        var big = Batch(50, new string('x', 100));
        await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, big));
        await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, Batch(1)));
        var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(topic, 0, 12, partitionMaxBytes: 100, maxBytes: 100));
        Assert.Equal(big.Length, response.Responses.Single().Partitions.Single().Records!.Value.Length);

        // Within limits that fit both, both come back.
        var both = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(topic, 0, 12));
        Assert.Equal(big.Length + Batch(1).Length, both.Responses.Single().Partitions.Single().Records!.Value.Length);
    }

    [Fact]
    public async Task AnEmptyLogAnswersNoErrorAndNoRecords()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 16, Fetch(topic, 0, 16));
        var p = response.Responses.Single().Partitions.Single();
        Assert.Equal((0, 0L), (p.ErrorCode, p.HighWatermark));
        Assert.Equal(0, p.Records?.Length ?? 0);
        Assert.Equal(0, response.SessionId);
        Assert.Equal(0, response.ThrottleTimeMs);
    }

    [Fact]
    public async Task UnknownTopicIdGetsError100AndNoTopicsGetsAnEmptyArray()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var unknown = new MetadataResponse.MetadataResponseTopic { Name = "nope", TopicId = Uuid.NewRandom() };
        var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 16, Fetch(unknown, 0, 16));
        Assert.Equal((short)ErrorCode.UnknownTopicId, response.Responses.Single().Partitions.Single().ErrorCode);
        var byName = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(unknown, 0, 12));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, byName.Responses.Single().Partitions.Single().ErrorCode);

        var none = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 16, new FetchRequest { SessionEpoch = -1, MaxBytes = 1000 });
        Assert.NotNull(none.Responses);
        Assert.Empty(none.Responses);
    }

    [Fact]
    public async Task ALongPollReturnsAsSoonAsDataArrives()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        await using var producer = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var fetch = client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(topic, 0, 12, maxWaitMs: 20_000, minBytes: 1));
        await Task.Delay(300);
        Assert.False(fetch.IsCompleted);
        await producer.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, 1, Batch(2)));
        var done = await Task.WhenAny(fetch, Task.Delay(10_000));
        Assert.Same(fetch, done);
        Assert.Equal(Batch(2).Length, (await fetch).Responses.Single().Partitions.Single().Records!.Value.Length);
    }

    [Fact]
    public async Task ALongPollWithoutDataReturnsAfterMaxWait()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        var started = DateTime.UtcNow;
        var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(topic, 0, 12, maxWaitMs: 400, minBytes: 1));
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromMilliseconds(350));
        Assert.Equal(0, response.Responses.Single().Partitions.Single().ErrorCode);
    }

    [Fact]
    public async Task ProduceErrorsAreKafkas()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;

        var unknown = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce("no-such-topic-" + Guid.NewGuid().ToString("N")[..6], -1, Batch(1)));
        var u = unknown.Responses.Single().PartitionResponses.Single();
        Assert.Equal(((short)ErrorCode.UnknownTopicOrPartition, -1L, -1L, -1L), (u.ErrorCode, u.BaseOffset, u.LogAppendTimeMs, u.LogStartOffset));

        var corrupt = Batch(2);
        corrupt[^1] ^= 0xFF;
        Assert.Equal((short)ErrorCode.CorruptMessage, (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, corrupt))).Responses.Single().PartitionResponses.Single().ErrorCode);

        var magic1 = Batch(2);
        magic1[RecordBatch.MagicOffset] = 1;
        Assert.Equal((short)ErrorCode.InvalidRecord, (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, magic1))).Responses.Single().PartitionResponses.Single().ErrorCode);

        var two = Batch(1).Concat(Batch(1)).ToArray();
        Assert.Equal((short)ErrorCode.InvalidRecord, (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, two))).Responses.Single().PartitionResponses.Single().ErrorCode);

        Assert.Equal((short)ErrorCode.InvalidRequiredAcks, (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, 2, Batch(1)))).Responses.Single().PartitionResponses.Single().ErrorCode);

        var huge = Batch(1, new string('x', 1_100_000));
        Assert.Equal((short)ErrorCode.MessageTooLarge, (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, huge))).Responses.Single().PartitionResponses.Single().ErrorCode);

        // Produce v0-v2 is advertised (for old librdkafka) but refused, as Kafka 4 does.
        Assert.Equal((short)ErrorCode.UnsupportedVersion, (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 2, Produce(topic.Name!, -1, Batch(1)))).Responses.Single().PartitionResponses.Single().ErrorCode);

        // None of it was stored.
        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(topic, 0, 12));
        Assert.Equal(0, fetch.Responses.Single().Partitions.Single().HighWatermark);
    }

    [Fact]
    public async Task AcksZeroGetsNoResponseAndAFailureClosesTheConnection()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        await client.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.Produce, 9, 1, Produce(topic.Name!, 0, Batch(1))));
        var next = await client.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest());
        Assert.Equal(0, next.ErrorCode); // the next frame read is the ApiVersions answer

        await client.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.Produce, 9, 3, Produce("missing-" + Guid.NewGuid().ToString("N")[..6], 0, Batch(1))));
        Assert.True(await client.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task ListOffsetsAnswersEarliestLatestAndByTimestamp()
    {
        var (client, topic) = await NewTopicAsync();
        await using var _ = client;
        await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, Batch(3, timestamp: 1000)));
        await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(topic.Name!, -1, Batch(3, timestamp: 5000)));

        async Task<ListOffsetsResponse.ListOffsetsPartitionResponse> Ask(long timestamp, short version)
        {
            var response = await client.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, version, new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics = [new() { Name = topic.Name!, Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp }] }],
            });
            return response.Topics.Single().Partitions.Single();
        }

        foreach (short v in new short[] { 1, 2, 7, 9 })
        {
            Assert.Equal(0, (await Ask(-2, v)).Offset);
            Assert.Equal(6, (await Ask(-1, v)).Offset);
            Assert.Equal(3, (await Ask(4000, v)).Offset);
            Assert.Equal((1L, 1001L), ((await Ask(1001, v)).Offset, (await Ask(1001, v)).Timestamp));
            Assert.Equal(-1, (await Ask(99_999, v)).Offset);
        }

        var max = await Ask(-3, 7);
        Assert.Equal((5, 5002L), (max.Offset, max.Timestamp));
    }

    [Fact]
    public async Task LogAppendTimeTopicsStampTheBatchAndCompactedTopicsRefuseNullKeys()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var name = "lat-" + Guid.NewGuid().ToString("N")[..8];
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics =
            [
                new() { Name = name, NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "message.timestamp.type", Value = "LogAppendTime" }] },
                new() { Name = name + "-compact", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "cleanup.policy", Value = "compact" }] },
            ],
        });
        Assert.All(created.Topics, t => Assert.Equal(0, t.ErrorCode));

        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var produced = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(name, -1, Batch(3, timestamp: 5)));
        var p = produced.Responses.Single().PartitionResponses.Single();
        Assert.InRange(p.LogAppendTimeMs, before, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var fetched = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, Fetch(new MetadataResponse.MetadataResponseTopic { Name = name }, 0, 12));
        var batch = new RecordBatch(fetched.Responses.Single().Partitions.Single().Records!.Value);
        Assert.True(batch.IsLogAppendTime);
        Assert.Equal(p.LogAppendTimeMs, batch.MaxTimestamp);
        Assert.True(batch.IsCrcValid());

        var nullKey = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("v"), 1)], compression: CompressionType.Lz4);
        var refused = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(name + "-compact", -1, nullKey));
        Assert.Equal((short)ErrorCode.InvalidRecord, refused.Responses.Single().PartitionResponses.Single().ErrorCode);
        var keyed = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Produce(name + "-compact", -1, Batch(2)));
        Assert.Equal(0, keyed.Responses.Single().PartitionResponses.Single().ErrorCode);
    }
}
