using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>
/// Produce, Fetch and the APIs that read or change a partition log (offsets, epochs, deletion,
/// log dirs, producer state) through the dispatcher, at their lowest and highest versions.
/// </summary>
public sealed class LogDispatchTests : IAsyncLifetime
{
    private const string Topic = "log";
    private BrokerHarness _broker = null!;
    private Uuid _topicId;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = Topic, NumPartitions = 2, ReplicationFactor = 1 }], TimeoutMs = 1000 });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
        _topicId = created.Topics.Single().TopicId;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _broker.SendAsync<T>(key, version, request);

    private static byte[] Batch(params long[] timestamps) => IdempotentBatch(-1, -1, -1, timestamps);

    private static byte[] IdempotentBatch(long producerId, short epoch, int sequence, params long[] timestamps) =>
        RecordBatchBuilder.Build(
            [.. timestamps.Select((t, i) => new RecordToWrite(Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"v{i}"), t))],
            producerId: producerId,
            producerEpoch: epoch,
            baseSequence: sequence);

    private async Task<ProduceResponse.PartitionProduceResponse> ProduceAsync(byte[] batch, int partition = 0, short version = 11, short acks = -1, string topic = Topic) =>
        Assert.Single(Assert.Single((await Send<ProduceResponse>(ApiKey.Produce, version, new ProduceRequest
        {
            Acks = acks,
            TimeoutMs = 1000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        })).Responses).PartitionResponses);

    private async Task<ListOffsetsResponse.ListOffsetsPartitionResponse> ListOffsetAsync(long timestamp, short version = 10, int partition = 0, int currentLeaderEpoch = -1) =>
        Assert.Single(Assert.Single((await Send<ListOffsetsResponse>(ApiKey.ListOffsets, version, new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = partition, Timestamp = timestamp, CurrentLeaderEpoch = currentLeaderEpoch, MaxNumOffsets = 1 }] }],
        })).Topics).Partitions);

    private async Task<FetchResponse.PartitionData> FetchAsync(short version, long offset, int partition = 0, Uuid? topicId = null, string topic = Topic) =>
        Assert.Single(Assert.Single((await Send<FetchResponse>(ApiKey.Fetch, version, new FetchRequest
        {
            MaxWaitMs = 0,
            MaxBytes = 1 << 20,
            Topics = [new() { Topic = topic, TopicId = topicId ?? _topicId, Partitions = [new() { Partition = partition, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
        })).Responses).Partitions);

    private static List<long> Offsets(ReadOnlyMemory<byte> records)
    {
        var offsets = new List<long>();
        while (records.Length >= RecordBatch.HeaderSize)
        {
            var batch = new RecordBatch(records[..(int)RecordBatch.DeclaredSize(records.Span)]);
            for (var o = batch.BaseOffset; o <= batch.LastOffset; o++)
            {
                offsets.Add(o);
            }

            records = records[batch.TotalSize..];
        }

        return offsets;
    }

    [Theory]
    [InlineData(3)]
    [InlineData(11)]
    [Covers(ApiKey.Produce)]
    public async Task ProduceAppendsAndAnswersTheOffsets(short version)
    {
        var first = await ProduceAsync(Batch(1, 2, 3), version: version);
        Assert.Equal(((short)0, 0L), (first.ErrorCode, first.BaseOffset));
        var second = await ProduceAsync(Batch(4), version: version, acks: 1);
        Assert.Equal(((short)0, 3L, -1L), (second.ErrorCode, second.BaseOffset, second.LogAppendTimeMs));
        if (version >= 5)
        {
            Assert.Equal(0, second.LogStartOffset);
        }

        Assert.Equal(4, (await ListOffsetAsync(-1)).Offset);
    }

    [Fact]
    [Covers(ApiKey.Produce)]
    public async Task ProduceRefusesWhatKafkaRefuses()
    {
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await ProduceAsync(Batch(1), topic: "nowhere")).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await ProduceAsync(Batch(1), partition: 7)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidTopicException, (await ProduceAsync(Batch(1), topic: "__consumer_offsets")).ErrorCode);

        // Versions 0-2 are advertised (for old librdkafka) but carry the old message format.
        var v0 = await ProduceAsync(Batch(1), version: 0);
        Assert.Equal(((short)ErrorCode.UnsupportedVersion, -1L), (v0.ErrorCode, v0.BaseOffset));

        // A bit flipped under the CRC.
        var corrupt = Batch(1);
        corrupt[^1] ^= 0x01;
        Assert.Equal((short)ErrorCode.CorruptMessage, (await ProduceAsync(corrupt)).ErrorCode);

        // Nothing was appended.
        Assert.Equal(0, (await ListOffsetAsync(-1)).Offset);
    }

    [Fact]
    [Covers(ApiKey.Produce)]
    public async Task ProduceWithAcksZeroIsNotAnswered()
    {
        var raw = await _broker.SendRawAsync(BrokerHarness.Frame(ApiKey.Produce, 11, 77, new ProduceRequest
        {
            Acks = 0,
            TimeoutMs = 1000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 1, Records = Batch(1) }] }],
        }));
        Assert.False(raw.Closed);
        Assert.Null(raw.Frame);
        Assert.Equal(1, (await ListOffsetAsync(-1, partition: 1)).Offset);

        // A failed acks=0 produce closes the connection, so the client refreshes its metadata.
        var failed = await _broker.SendRawAsync(BrokerHarness.Frame(ApiKey.Produce, 11, 78, new ProduceRequest
        {
            Acks = 0,
            TimeoutMs = 1000,
            TopicData = [new() { Name = "nowhere", PartitionData = [new() { Index = 0, Records = Batch(1) }] }],
        }));
        Assert.True(failed.Closed);
    }

    [Fact]
    [Covers(ApiKey.InitProducerId)]
    [Covers(ApiKey.Produce)]
    [Covers(ApiKey.DescribeProducers)]
    public async Task IdempotentProduceKeepsSequencesAndFencesOldEpochs()
    {
        var init = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 0, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000 });
        Assert.Equal((short)0, init.ErrorCode);
        Assert.True(init.ProducerId >= 0);
        Assert.Equal(0, init.ProducerEpoch);
        var other = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000, ProducerId = -1, ProducerEpoch = -1 });
        Assert.Equal(((short)0, (short)0), (other.ErrorCode, other.ProducerEpoch));
        Assert.NotEqual(init.ProducerId, other.ProducerId);

        var pid = init.ProducerId;
        Assert.Equal(((short)0, 0L), ((await ProduceAsync(IdempotentBatch(pid, 0, 0, 10, 11))) is var a ? (a.ErrorCode, a.BaseOffset) : default));

        // A retry of the stored batch: answered with its first offset, stored once.
        var duplicate = await ProduceAsync(IdempotentBatch(pid, 0, 0, 10, 11));
        Assert.Equal(((short)0, 0L), (duplicate.ErrorCode, duplicate.BaseOffset));
        Assert.Equal(2, (await ListOffsetAsync(-1)).Offset);

        // A gap in the sequence.
        var gap = await ProduceAsync(IdempotentBatch(pid, 0, 5, 12));
        Assert.Equal(((short)ErrorCode.OutOfOrderSequenceNumber, -1L), (gap.ErrorCode, gap.BaseOffset));
        var next = await ProduceAsync(IdempotentBatch(pid, 0, 2, 12));
        Assert.Equal(((short)0, 2L), (next.ErrorCode, next.BaseOffset));

        var described = Assert.Single(Assert.Single((await Send<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest
        {
            Topics = [new() { Name = Topic, PartitionIndexes = [0, 1, 9] }],
        })).Topics).Partitions, p => p.PartitionIndex == 0);
        var state = Assert.Single(described.ActiveProducers);
        Assert.Equal((pid, 0, 2, -1L), (state.ProducerId, state.ProducerEpoch, state.LastSequence, state.CurrentTxnStartOffset));

        // v3+: naming the current id and epoch bumps the epoch; the old epoch is fenced.
        var bumped = await Send<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000, ProducerId = pid, ProducerEpoch = 0 });
        Assert.Equal(((short)0, pid, (short)1), (bumped.ErrorCode, bumped.ProducerId, bumped.ProducerEpoch));
        Assert.Equal((short)0, (await ProduceAsync(IdempotentBatch(pid, 1, 0, 13))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await ProduceAsync(IdempotentBatch(pid, 0, 3, 13))).ErrorCode);
        Assert.Equal(4, (await ListOffsetAsync(-1)).Offset);
    }

    [Fact]
    [Covers(ApiKey.DescribeProducers)]
    public async Task DescribeProducersAnswersUnknownPartitionsAndEmptyOnes()
    {
        var response = await Send<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest
        {
            Topics = [new() { Name = Topic, PartitionIndexes = [1, 5] }, new() { Name = "nowhere", PartitionIndexes = [0] }],
        });
        Assert.Equal([Topic, "nowhere"], response.Topics.Select(t => t.Name));
        Assert.Equal([(1, (short)0), (5, (short)ErrorCode.UnknownTopicOrPartition)], response.Topics[0].Partitions.Select(p => (p.PartitionIndex, p.ErrorCode)));
        Assert.Empty(response.Topics[0].Partitions[0].ActiveProducers);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, Assert.Single(response.Topics[1].Partitions).ErrorCode);
    }

    [Theory]
    [InlineData(4)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(17)]
    [Covers(ApiKey.Fetch)]
    public async Task FetchReadsWholeBatchesFromTheOffsetAskedFor(short version)
    {
        await ProduceAsync(Batch(1, 2));
        await ProduceAsync(Batch(3));
        await ProduceAsync(Batch(4));

        // Offset 1 is inside the first batch: the whole batch comes back, as Kafka sends it.
        var from1 = await FetchAsync(version, 1);
        Assert.Equal((short)0, from1.ErrorCode);
        Assert.Equal([0L, 1, 2, 3], Offsets(from1.Records!.Value));
        Assert.Equal((4L, 4L), (from1.HighWatermark, from1.LastStableOffset));
        if (version >= 5)
        {
            Assert.Equal(0, from1.LogStartOffset);
        }

        var from3 = await FetchAsync(version, 3);
        Assert.Equal([3L], Offsets(from3.Records!.Value));

        // At the end: nothing yet, no error.
        var atEnd = await FetchAsync(version, 4);
        Assert.Equal(((short)0, 0, 4L), (atEnd.ErrorCode, atEnd.Records!.Value.Length, atEnd.HighWatermark));

        var past = await FetchAsync(version, 99);
        Assert.Equal(((short)ErrorCode.OffsetOutOfRange, 0), (past.ErrorCode, past.Records!.Value.Length));

        var unknownPartition = await FetchAsync(version, 0, partition: 9);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknownPartition.ErrorCode);

        // v13+ name topics by id (an unknown id: UNKNOWN_TOPIC_ID), before by name.
        var unknownTopic = await FetchAsync(version, 0, topicId: Uuid.NewRandom(), topic: "nowhere");
        Assert.Equal((short)(version >= 13 ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition), unknownTopic.ErrorCode);
    }

    [Fact]
    [Covers(ApiKey.Fetch)]
    public async Task FetchFencesAnOlderLeaderEpochAndRefusesSessions()
    {
        await ProduceAsync(Batch(1));
        var request = new FetchRequest
        {
            MaxBytes = 1 << 20,
            Topics = [new() { TopicId = _topicId, Partitions = [new() { Partition = 0, FetchOffset = 0, CurrentLeaderEpoch = 3, PartitionMaxBytes = 1 << 20 }] }],
        };
        var ahead = Assert.Single(Assert.Single((await Send<FetchResponse>(ApiKey.Fetch, 17, request)).Responses).Partitions);
        Assert.Equal((short)ErrorCode.UnknownLeaderEpoch, ahead.ErrorCode);

        request.Topics[0].Partitions[0].CurrentLeaderEpoch = 0;
        var current = Assert.Single(Assert.Single((await Send<FetchResponse>(ApiKey.Fetch, 17, request)).Responses).Partitions);
        Assert.Equal(((short)0, 1L), (current.ErrorCode, current.HighWatermark));

        var incremental = await Send<FetchResponse>(ApiKey.Fetch, 17, new FetchRequest { SessionId = 5, SessionEpoch = 1, MaxBytes = 100 });
        Assert.Equal((short)ErrorCode.FetchSessionIdNotFound, incremental.ErrorCode);
        var badEpoch = await Send<FetchResponse>(ApiKey.Fetch, 17, new FetchRequest { SessionId = 0, SessionEpoch = 3, MaxBytes = 100 });
        Assert.Equal((short)ErrorCode.InvalidFetchSessionEpoch, badEpoch.ErrorCode);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(10)]
    [Covers(ApiKey.ListOffsets)]
    public async Task ListOffsetsFindsEarliestLatestByTimeAndMaxTimestamp(short version)
    {
        // Offsets 0-2 stamped 1000, 3000, 1500; offset 3 stamped 2000.
        await ProduceAsync(Batch(1000, 3000, 1500));
        await ProduceAsync(Batch(2000));

        Assert.Equal((short)0, (await ListOffsetAsync(-2, version)).ErrorCode);
        Assert.Equal(0, (await ListOffsetAsync(-2, version)).Offset);
        var latest = await ListOffsetAsync(-1, version);
        Assert.Equal(4, latest.Offset);
        Assert.Equal(version >= 4 ? 0 : -1, latest.LeaderEpoch);

        // The first record stamped at or after the time, in offset order.
        var at1500 = await ListOffsetAsync(1500, version);
        Assert.Equal((1L, 3000L), (at1500.Offset, at1500.Timestamp));
        var at1000 = await ListOffsetAsync(1000, version);
        Assert.Equal((0L, 1000L), (at1000.Offset, at1000.Timestamp));
        var after = await ListOffsetAsync(5000, version);
        Assert.Equal(((short)0, -1L, -1L), (after.ErrorCode, after.Offset, after.Timestamp));

        if (version >= 7)
        {
            // KIP-734: the record holding the largest timestamp (KAFKA-16310: that record, not its batch's last).
            var max = await ListOffsetAsync(-3, version);
            Assert.Equal((1L, 3000L), (max.Offset, max.Timestamp));
        }

        if (version >= 8)
        {
            Assert.Equal(0, (await ListOffsetAsync(-4, version)).Offset); // earliest local
        }

        if (version >= 9)
        {
            Assert.Equal(-1, (await ListOffsetAsync(-5, version)).Offset); // latest tiered: nothing is tiered
        }

        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await ListOffsetAsync(-1, version, partition: 4)).ErrorCode);
        if (version >= 4)
        {
            Assert.Equal((short)ErrorCode.UnknownLeaderEpoch, (await ListOffsetAsync(-1, version, currentLeaderEpoch: 2)).ErrorCode);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [Covers(ApiKey.OffsetForLeaderEpoch)]
    public async Task OffsetForLeaderEpochAnswersWhereAnEpochEnds(short version)
    {
        await ProduceAsync(Batch(1, 2));
        await ProduceAsync(Batch(3));

        async Task<OffsetForLeaderEpochResponse.EpochEndOffset> EndOf(int epoch, int partition = 0, int currentLeaderEpoch = -1, string topic = Topic) =>
            Assert.Single(Assert.Single((await Send<OffsetForLeaderEpochResponse>(ApiKey.OffsetForLeaderEpoch, version, new OffsetForLeaderEpochRequest
            {
                ReplicaId = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, LeaderEpoch = epoch, CurrentLeaderEpoch = currentLeaderEpoch }] }],
            })).Topics).Partitions);

        // The current epoch ends at the log end.
        var current = await EndOf(0);
        Assert.Equal(((short)0, 3L), (current.ErrorCode, current.EndOffset));
        if (version >= 1)
        {
            Assert.Equal(0, current.LeaderEpoch);
        }

        // An epoch past every known one: undefined, as Kafka's leader-epoch cache answers.
        var future = await EndOf(5);
        Assert.Equal(((short)0, -1L), (future.ErrorCode, future.EndOffset));

        // A partition without records: its leader's epoch starts at offset 0 (Kafka records
        // the start offset when a replica becomes leader), so epoch 0 ends at the log end, 0.
        Assert.Equal(((short)0, 0L), await EndOf(0, partition: 1) is var empty ? (empty.ErrorCode, empty.EndOffset) : default);

        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await EndOf(0, topic: "nowhere")).ErrorCode);
        if (version >= 2)
        {
            Assert.Equal((short)ErrorCode.UnknownLeaderEpoch, (await EndOf(0, currentLeaderEpoch: 4)).ErrorCode);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [Covers(ApiKey.DeleteRecords)]
    public async Task DeleteRecordsMovesTheLogStartAndFetchFollows(short version)
    {
        for (var i = 0; i < 5; i++)
        {
            await ProduceAsync(Batch(1));
        }

        async Task<DeleteRecordsResponse.DeleteRecordsPartitionResult> DeleteBefore(long offset, int partition = 0, string topic = Topic) =>
            Assert.Single(Assert.Single((await Send<DeleteRecordsResponse>(ApiKey.DeleteRecords, version, new DeleteRecordsRequest
            {
                Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = partition, Offset = offset }] }],
                TimeoutMs = 1000,
            })).Topics).Partitions);

        var deleted = await DeleteBefore(2);
        Assert.Equal(((short)0, 2L), (deleted.ErrorCode, deleted.LowWatermark));
        Assert.Equal(2, (await ListOffsetAsync(-2)).Offset);
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, (await FetchAsync(12, 0)).ErrorCode);
        var fetched = await FetchAsync(12, 2);
        Assert.Equal(((short)0, 2L), (fetched.ErrorCode, fetched.LogStartOffset));
        Assert.Equal([2L, 3, 4], Offsets(fetched.Records!.Value));

        // Lower than the log start: nothing changes.
        Assert.Equal(((short)0, 2L), (await DeleteBefore(1)) is var lower ? (lower.ErrorCode, lower.LowWatermark) : default);

        // Past the high watermark: refused; -1: up to the high watermark.
        Assert.Equal((short)ErrorCode.OffsetOutOfRange, (await DeleteBefore(6)).ErrorCode);
        Assert.Equal(((short)0, 5L), (await DeleteBefore(-1)) is var all ? (all.ErrorCode, all.LowWatermark) : default);
        Assert.Equal(5, (await ListOffsetAsync(-2)).Offset);

        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await DeleteBefore(0, partition: 3)).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await DeleteBefore(0, topic: "nowhere")).ErrorCode);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(4)]
    [Covers(ApiKey.DescribeLogDirs)]
    public async Task DescribeLogDirsListsTheDirectoryAndPartitionSizes(short version)
    {
        var batch = Batch(1, 2);
        await ProduceAsync(batch.ToArray());

        var all = await Send<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, version, new DescribeLogDirsRequest { Topics = null });
        var dir = Assert.Single(all.Results);
        Assert.Equal((short)0, dir.ErrorCode);
        Assert.Equal(Path.GetFullPath(_broker.LogDir), dir.LogDir);
        var topic = Assert.Single(dir.Topics, t => t.Name == Topic);
        Assert.Equal([0, 1], topic.Partitions.Select(p => p.PartitionIndex).Order());
        Assert.Equal(batch.Length, topic.Partitions.Single(p => p.PartitionIndex == 0).PartitionSize);
        Assert.Equal(0, topic.Partitions.Single(p => p.PartitionIndex == 1).PartitionSize);
        Assert.All(topic.Partitions, p => Assert.False(p.IsFutureKey));
        if (version >= 4)
        {
            Assert.True(dir.TotalBytes > 0 && dir.UsableBytes > 0 && dir.UsableBytes <= dir.TotalBytes);
        }

        var one = await Send<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, version, new DescribeLogDirsRequest { Topics = [new() { Topic = Topic, Partitions = [1] }] });
        var only = Assert.Single(Assert.Single(one.Results).Topics);
        Assert.Equal((Topic, 1), (only.Name, Assert.Single(only.Partitions).PartitionIndex));

        var none = await Send<DescribeLogDirsResponse>(ApiKey.DescribeLogDirs, version, new DescribeLogDirsRequest { Topics = [new() { Topic = "nowhere", Partitions = [0] }] });
        Assert.Empty(Assert.Single(none.Results).Topics);
    }
}
