using System.Text;
using Moldau.Broker.Retention;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Tests;

/// <summary>
/// The read side of transactions through the dispatcher: transactional batches and markers are
/// appended to the partition log directly (as the transaction coordinator and a transactional
/// producer's Produce do), then Fetch (read_committed and read_uncommitted), ListOffsets
/// (READ_COMMITTED) and DescribeProducers are asked, at old and new versions; retention and
/// DeleteRecords around an open transaction.
/// </summary>
public sealed class TransactionReadTests : IAsyncLifetime
{
    private const string Topic = "txn";
    private BrokerHarness _broker = null!;
    private IPartitionLog _log = null!;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        var created = await _broker.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "segment.bytes", Value = "2000" }, new() { Name = "retention.bytes", Value = "1" }] }],
            TimeoutMs = 1000,
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
        _log = _broker.Broker.State.Topics.LogOf(_broker.Broker.State.Topics.Find(Topic)!.Partition(0)!)!;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private static byte[] Plain(string value, int size = 0) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value + new string('.', size)), 1000)]);

    private static byte[] Transactional(long producerId, int sequence, string value, long timestamp = 1000, int size = 0) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value + new string('.', size)), timestamp)], producerId: producerId, producerEpoch: 0, baseSequence: sequence, attributes: 0x10);

    private async Task<long> Append(byte[] batch)
    {
        var result = _log.Append(batch, 0, durabilityWanted: true);
        Assert.Equal(AppendStatus.Appended, result.Status);
        await _log.WaitDurableAsync(_log.LogEndOffset).WaitAsync(TimeSpan.FromSeconds(30));
        return result.BaseOffset;
    }

    private Task<long> Marker(long producerId, ControlRecordType type) =>
        Append(ControlRecordBatch.Build(producerId, 0, 1, type, 5000));

    private async Task<FetchResponse.PartitionData> Fetch(short version, long offset, sbyte isolation, int maxWaitMs = 0) =>
        Assert.Single(Assert.Single((await _broker.SendAsync<FetchResponse>(ApiKey.Fetch, version, new FetchRequest
        {
            ReplicaId = -1,
            MaxWaitMs = maxWaitMs,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            IsolationLevel = isolation,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = -1, LogStartOffset = -1 }] }],
        })).Responses).Partitions);

    private async Task<ListOffsetsResponse.ListOffsetsPartitionResponse> ListOffset(long timestamp, sbyte isolation, short version = 7) =>
        Assert.Single(Assert.Single((await _broker.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, version, new ListOffsetsRequest
        {
            ReplicaId = -1,
            IsolationLevel = isolation,
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Timestamp = timestamp, CurrentLeaderEpoch = -1 }] }],
        })).Topics).Partitions);

    private static List<(long Offset, bool Control)> Batches(ReadOnlyMemory<byte>? records)
    {
        var found = new List<(long, bool)>();
        var bytes = records ?? ReadOnlyMemory<byte>.Empty;
        while (bytes.Length >= RecordBatch.HeaderSize)
        {
            var batch = new RecordBatch(bytes[..(int)RecordBatch.DeclaredSize(bytes.Span)]);
            found.Add((batch.BaseOffset, batch.IsControl));
            bytes = bytes[batch.TotalSize..];
        }

        return found;
    }

    [Theory]
    [InlineData(4)]
    [InlineData(12)]
    [Covers(ApiKey.Fetch)]
    [Covers(ApiKey.ListOffsets)]
    public async Task ReadCommittedStopsAtTheLastStableOffsetAndListsAbortedTransactions(short fetchVersion)
    {
        await Append(Plain("a"));                       // 0
        await Append(Transactional(7, 0, "aborted-1")); // 1: 7's transaction
        await Append(Transactional(8, 0, "open"));      // 2: 8's transaction, open
        await Append(Transactional(7, 1, "aborted-2")); // 3
        await Marker(7, ControlRecordType.Abort);       // 4
        await Append(Plain("b"));                       // 5

        // read_committed: up to 8's first offset, with 7's abort (its records are fetched).
        var committed = await Fetch(fetchVersion, 0, isolation: 1);
        Assert.Equal((0, 6L, 2L), (committed.ErrorCode, committed.HighWatermark, committed.LastStableOffset));
        Assert.Equal([(0L, false), (1L, false)], Batches(committed.Records));
        var aborted = Assert.Single(committed.AbortedTransactions!);
        Assert.Equal((7L, 1L), (aborted.ProducerId, aborted.FirstOffset));

        // At the last stable offset: nothing yet, and an empty list (not null) of aborted transactions.
        var atStable = await Fetch(fetchVersion, 2, isolation: 1);
        Assert.Empty(Batches(atStable.Records));
        Assert.Empty(atStable.AbortedTransactions!);

        // read_uncommitted: everything below the high watermark; the LSO is reported all the same.
        var uncommitted = await Fetch(fetchVersion, 0, isolation: 0);
        Assert.Equal((6L, 2L), (uncommitted.HighWatermark, uncommitted.LastStableOffset));
        Assert.Equal([(0L, false), (1L, false), (2L, false), (3L, false), (4L, true), (5L, false)], Batches(uncommitted.Records));
        Assert.Null(uncommitted.AbortedTransactions);

        Assert.Equal(2, (await ListOffset(-1, isolation: 1)).Offset);
        Assert.Equal(6, (await ListOffset(-1, isolation: 0)).Offset);
        Assert.Equal(2, (await ListOffset(-1, isolation: 1, version: 2)).Offset);

        // 8 commits: everything is stable; from 2 on the fetch still names 7's abort (its marker is at 4).
        await Marker(8, ControlRecordType.Commit);      // 6
        var after = await Fetch(fetchVersion, 2, isolation: 1);
        Assert.Equal((7L, 7L), (after.HighWatermark, after.LastStableOffset));
        Assert.Equal([(2L, false), (3L, false), (4L, true), (5L, false), (6L, true)], Batches(after.Records));
        Assert.Equal([(7L, 1L)], after.AbortedTransactions!.Select(a => (a.ProducerId, a.FirstOffset)));
        Assert.Empty((await Fetch(fetchVersion, 5, isolation: 1)).AbortedTransactions!);
        Assert.Equal(7, (await ListOffset(-1, isolation: 1)).Offset);
    }

    [Fact]
    [Covers(ApiKey.ListOffsets)]
    public async Task TimestampLookupsUnderReadCommittedFindNothingPastTheLastStableOffset()
    {
        await Append(Plain("a"));                                        // 0 at 1000
        await Append(Transactional(7, 0, "late", timestamp: 9000));      // 1 at 9000, open

        Assert.Equal((1L, 9000L), ((await ListOffset(-3, isolation: 0)).Offset, (await ListOffset(-3, isolation: 0)).Timestamp));
        var max = await ListOffset(-3, isolation: 1);
        Assert.Equal((-1L, -1L), (max.Offset, max.Timestamp));
        Assert.Equal(-1, (await ListOffset(5000, isolation: 1)).Offset);
        Assert.Equal(1, (await ListOffset(5000, isolation: 0)).Offset);
        Assert.Equal(0, (await ListOffset(500, isolation: 1)).Offset);

        await Marker(7, ControlRecordType.Commit);
        Assert.Equal(1, (await ListOffset(5000, isolation: 1)).Offset);
    }

    [Fact]
    public async Task AWaitingReadCommittedFetchWakesWhenAMarkerMakesItsTransactionStable()
    {
        await Append(Transactional(7, 0, "t"));  // 0
        await Append(Plain("after"));            // 1
        Assert.Equal(0, _log.LastStableOffset);

        // Waits at the last stable offset (below the high watermark) for far longer than the test.
        var waiting = Fetch(12, 0, isolation: 1, maxWaitMs: 120_000);
        await Task.Delay(200);
        Assert.False(waiting.IsCompleted);
        await Marker(7, ControlRecordType.Commit); // 2
        var woken = await waiting.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(3, woken.LastStableOffset);
        Assert.Equal([(0L, false), (1L, false), (2L, true)], Batches(woken.Records));
    }

    [Fact]
    [Covers(ApiKey.DescribeProducers)]
    public async Task DescribeProducersShowsTheOpenTransactionsStart()
    {
        await Append(Plain("a"));               // 0
        await Append(Transactional(7, 0, "t")); // 1
        var described = await _broker.SendAsync<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest { Topics = [new() { Name = Topic, PartitionIndexes = [0] }] });
        var producer = Assert.Single(Assert.Single(Assert.Single(described.Topics).Partitions).ActiveProducers);
        Assert.Equal((7L, 0, 0, 1000L, -1, 1L), (producer.ProducerId, (int)producer.ProducerEpoch, producer.LastSequence, producer.LastTimestamp, producer.CoordinatorEpoch, producer.CurrentTxnStartOffset));

        await Marker(7, ControlRecordType.Abort);
        described = await _broker.SendAsync<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest { Topics = [new() { Name = Topic, PartitionIndexes = [0] }] });
        producer = Assert.Single(Assert.Single(Assert.Single(described.Topics).Partitions).ActiveProducers);
        Assert.Equal((1, -1L), (producer.CoordinatorEpoch, producer.CurrentTxnStartOffset));
    }

    [Fact]
    [Covers(ApiKey.DeleteRecords)]
    public async Task RetentionKeepsAnOpenTransactionsSegmentsAndDeleteRecordsMayPassThem()
    {
        // retention.bytes=1 and 2,000-byte segments: every closed segment is due.
        for (var i = 0; i < 6; i++)
        {
            await Append(Plain($"p{i}", size: 400));
        }

        var opened = await Append(Transactional(7, 0, "open", size: 400));
        for (var i = 1; i < 12; i++)
        {
            await Append(Transactional(7, i, $"t{i}", size: 400));
        }

        var segments = _log.Segments();
        Assert.True(segments.Count > 4);
        var holding = segments.Last(s => s.BaseOffset <= opened).BaseOffset;
        Assert.True(holding > 0);

        new RetentionPolicy(_broker.Broker.State).Run();
        Assert.Equal(holding, _log.LogStartOffset); // the segments before the transaction's went, its own stays
        new RetentionPolicy(_broker.Broker.State).Run();
        Assert.Equal(holding, _log.LogStartOffset);

        // The transaction ends: retention goes on up to the active segment.
        await Marker(7, ControlRecordType.Commit);
        new RetentionPolicy(_broker.Broker.State).Run();
        Assert.Equal(_log.Segments()[^1].BaseOffset, _log.LogStartOffset);
        Assert.True(_log.LogStartOffset > holding);

        // DeleteRecords up to the high watermark passes an open transaction, as in Kafka.
        var next = await Append(Transactional(8, 0, "x"));
        await Append(Plain("y"));
        var deleted = await _broker.SendAsync<DeleteRecordsResponse>(ApiKey.DeleteRecords, 2, new DeleteRecordsRequest
        {
            Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Offset = next + 1 }] }],
            TimeoutMs = 1000,
        });
        var result = Assert.Single(Assert.Single(deleted.Topics).Partitions);
        Assert.Equal((0, next + 1), (result.ErrorCode, result.LowWatermark));
        Assert.Equal(next + 1, _log.LastStableOffset);
        Assert.Equal(next + 1, (await Fetch(12, next + 1, isolation: 1)).LastStableOffset);
    }
}
