using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests.Contract;

/// <summary>
/// What every <see cref="IPartitionLog"/> promises, written against the interface only: a new
/// backend derives from this class, says how to open an empty log, and runs the same tests
/// (<see cref="LocalPartitionLogContractTests"/>, <see cref="InMemoryPartitionLogContractTests"/>).
/// </summary>
public abstract class PartitionLogContract
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    /// <summary>
    /// An empty log whose appends nobody waits for stay above the high watermark until someone
    /// asks (a linger far longer than a test), with segments of about <paramref name="segmentBytes"/>.
    /// </summary>
    private protected abstract IPartitionLog Open(long segmentBytes = 1L << 30);

    private static byte[] Batch(params long[] timestamps) =>
        RecordBatchBuilder.Build(timestamps.Select((t, i) => new RecordToWrite(Encoding.UTF8.GetBytes($"key-{i}"), new byte[40], t)).ToList());

    private static byte[] Idempotent(long producerId, short epoch, int sequence, int records = 1) =>
        RecordBatchBuilder.Build(
            Enumerable.Range(0, records).Select(i => new RecordToWrite(null, Encoding.UTF8.GetBytes($"v{sequence + i}"), 1000 + sequence + i)).ToList(),
            producerId: producerId,
            producerEpoch: epoch,
            baseSequence: sequence);

    private static byte[] Transactional(long producerId, short epoch, int sequence, int records = 1) =>
        RecordBatchBuilder.Build(
            Enumerable.Range(0, records).Select(i => new RecordToWrite(null, Encoding.UTF8.GetBytes($"t{sequence + i}"), 2000 + sequence + i)).ToList(),
            producerId: producerId,
            producerEpoch: epoch,
            baseSequence: sequence,
            attributes: 0x10); // transactional

    private static byte[] Marker(long producerId, short epoch, int coordinatorEpoch, ControlRecordType type) =>
        ControlRecordBatch.Build(producerId, epoch, coordinatorEpoch, type, 3000);

    private static async Task<AppendResult> AppendDurably(IPartitionLog log, byte[] batch, int leaderEpoch = 0)
    {
        var result = log.Append(batch, leaderEpoch, durabilityWanted: true);
        await log.WaitDurableAsync(log.LogEndOffset).WaitAsync(Patience);
        return result;
    }

    /// <summary>The batches in <paramref name="bytes"/>, each checked to be whole and CRC-valid.</summary>
    private static List<RecordBatch> Batches(ReadOnlyMemory<byte> bytes)
    {
        var batches = new List<RecordBatch>();
        for (var at = 0; at < bytes.Length;)
        {
            var size = (int)RecordBatch.DeclaredSize(bytes.Span[at..]);
            Assert.InRange(size, RecordBatch.HeaderSize, bytes.Length - at);
            var batch = new RecordBatch(bytes.Slice(at, size));
            Assert.True(batch.IsCrcValid());
            batches.Add(batch);
            at += size;
        }

        return batches;
    }

    private static void AssertOffsetsInOrder(IPartitionLog log)
    {
        Assert.InRange(log.RecoveryPoint, 0, log.LogEndOffset);
        Assert.InRange(log.LogStartOffset, 0, log.LogEndOffset);
        Assert.InRange(log.HighWatermark, 0, log.LogEndOffset);
        Assert.InRange(log.LastStableOffset, 0, log.HighWatermark);
    }

    [Fact]
    public void AppendGivesConsecutiveOffsetsAndRewritesOnlyBaseOffsetAndLeaderEpoch()
    {
        using var log = Open();
        Assert.Equal((0L, 0L, 0L), (log.LogStartOffset, log.HighWatermark, log.LogEndOffset));

        var first = Batch(1000, 1001, 1002);
        var sent = (byte[])first.Clone();
        var result = log.Append(first, 4);
        Assert.Equal(new AppendResult(AppendStatus.Appended, 0) { LastOffset = 2, LogAppendTime = -1, LogStartOffset = 0 }, result);
        Assert.Equal(3, log.LogEndOffset);
        AssertOffsetsInOrder(log);

        // In place, outside the CRC: base offset 0 and leader epoch 4; everything else as sent.
        Assert.Equal(0, BinaryPrimitives.ReadInt64BigEndian(first));
        Assert.Equal(4, BinaryPrimitives.ReadInt32BigEndian(first.AsSpan(12)));
        Assert.Equal(sent.AsSpan(16).ToArray(), first.AsSpan(16).ToArray());

        var second = Batch(2000);
        Assert.Equal(new AppendResult(AppendStatus.Appended, 3) { LastOffset = 3, LogStartOffset = 0 }, log.Append(second, 4));
        Assert.Equal(3, BinaryPrimitives.ReadInt64BigEndian(second));
        Assert.Equal(4, log.LogEndOffset);
    }

    [Fact]
    public void AppendReportsTheLogAppendTimeOfABatchThatCarriesOne()
    {
        using var log = Open();
        var batch = RecordBatchBuilder.Build([new(null, new byte[5], 5000), new(null, new byte[5], 7000)], attributes: 0x08);
        var result = log.Append(batch, 0);
        Assert.Equal((AppendStatus.Appended, 0L, 1L, 7000L), (result.Status, result.BaseOffset, result.LastOffset, result.LogAppendTime));
    }

    [Fact]
    public async Task ReadReturnsWholeBatchesFromTheOneHoldingTheOffsetWithinTheLimits()
    {
        using var log = Open();
        byte[][] sent = [Batch(10, 11), Batch(20, 21), Batch(30, 31)];
        foreach (var b in sent)
        {
            await AppendDurably(log, b);
        }

        var size = sent[0].Length;
        Assert.All(sent, b => Assert.Equal(size, b.Length));
        var rented = new List<byte[]>();
        try
        {
            // Offset 3 sits inside the second batch: reading starts with that batch, as Kafka does.
            var bytes = log.Read(3, 1 << 20, wholeFirstBatchUpTo: 0, log.HighWatermark, rented);
            Assert.NotEmpty(rented);
            Assert.Equal([2L, 4L], Batches(bytes).Select(b => b.BaseOffset));
            Assert.Equal(sent[1].Concat(sent[2]), bytes.ToArray());

            // None that starts at or beyond maxOffset, at most maxBytes of whole batches.
            Assert.Equal([0L, 2L], Batches(log.Read(0, 1 << 20, 0, 4, rented)).Select(b => b.BaseOffset));
            Assert.Equal([0L], Batches(log.Read(0, (2 * size) - 1, 0, log.HighWatermark, rented)).Select(b => b.BaseOffset));

            // A first batch over the limit: nothing, unless it may come whole (KIP-74).
            Assert.True(log.Read(2, size - 1, 0, log.HighWatermark, rented).IsEmpty);
            Assert.True(log.Read(2, size - 1, size - 1, log.HighWatermark, rented).IsEmpty);
            Assert.Equal([2L], Batches(log.Read(2, 10, size, log.HighWatermark, rented)).Select(b => b.BaseOffset));

            // Empty at the log end and at the bound.
            Assert.True(log.Read(6, 1 << 20, long.MaxValue, long.MaxValue, rented).IsEmpty);
            Assert.True(log.Read(4, 1 << 20, long.MaxValue, 4, rented).IsEmpty);
        }
        finally
        {
            foreach (var buffer in rented)
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        // The allocating overload, used off the hot path.
        Assert.Equal([4L], Batches(log.Read(5, 1, minOneBatch: true, log.LogEndOffset)).Select(b => b.BaseOffset));
        Assert.True(log.Read(5, 1, minOneBatch: false, log.LogEndOffset).IsEmpty);
    }

    [Fact]
    public async Task RecordsAboveTheHighWatermarkWaitForDurabilityAndReadersCanAskForIt()
    {
        using var log = Open();
        var advanced = 0;
        log.OnHighWatermarkAdvanced = () => Interlocked.Increment(ref advanced);

        // acks=1: written and readable up to the log end, not yet for consumers.
        log.Append(Batch(1, 2), 0);
        Assert.Equal((0L, 2L), (log.HighWatermark, log.LogEndOffset));
        Assert.True(log.Read(0, 1 << 20, long.MaxValue, log.ReadLimit(FetchIsolation.HighWatermark), null).IsEmpty);
        Assert.Equal([0L], Batches(log.Read(0, 1 << 20, long.MaxValue, log.ReadLimit(FetchIsolation.LogEnd), null)).Select(b => b.BaseOffset));

        // A reader waiting at the high watermark makes it move without an acks=all producer.
        log.RequestDurableSoon();
        for (var i = 0; i < 3000 && log.HighWatermark < 2; i++)
        {
            await Task.Delay(10);
        }

        Assert.Equal(2, log.HighWatermark);
        Assert.Equal(log.HighWatermark, log.ReadLimit(FetchIsolation.TxnCommitted));
        Assert.True(Volatile.Read(ref advanced) > 0);

        // acks=all: many waiters, all answered once what they wait for is durable.
        var waits = new List<Task>();
        for (var i = 0; i < 20; i++)
        {
            log.Append(Batch(i), 0, durabilityWanted: true);
            waits.Add(log.WaitDurableAsync(log.LogEndOffset));
        }

        await Task.WhenAll(waits).WaitAsync(Patience);
        Assert.Equal((22L, 22L), (log.HighWatermark, log.LogEndOffset));
        Assert.True(log.WaitDurableAsync(22).IsCompletedSuccessfully);

        // Flush makes it durable before returning.
        log.Append(Batch(9), 0);
        log.Flush();
        Assert.Equal((23L, 23L), (log.HighWatermark, log.RecoveryPoint));
        AssertOffsetsInOrder(log);
    }

    [Fact]
    public async Task ReadsRunningBesideAppendsSeeOnlyWholeBatches()
    {
        using var log = Open(segmentBytes: 4096);
        using var stop = new CancellationTokenSource();
        var reader = Task.Run(() =>
        {
            var seen = 0L;
            void ReadOnce()
            {
                var end = log.LogEndOffset;
                var bytes = log.Read(0, 1 << 20, long.MaxValue, end, null);
                var batches = Batches(bytes);
                Assert.All(batches, b => Assert.True(b.LastOffset < end));
                seen = Math.Max(seen, batches.Count);
            }

            while (!stop.IsCancellationRequested)
            {
                ReadOnce();
            }

            // Once more after the appends: a reader descheduled for all of them still reads something.
            ReadOnce();
            return seen;
        });
        for (var i = 0; i < 300; i++)
        {
            log.Append(Batch(i, i + 1), 0);
        }

        await stop.CancelAsync();
        Assert.True(await reader.WaitAsync(Patience) > 0);
        Assert.Equal(600, log.LogEndOffset);
    }

    [Fact]
    public async Task TimestampLookupsFindTheFirstCandidateBatchAndTheMaxTimestampRecord()
    {
        using var log = Open();
        Assert.Null(log.FindMaxTimestamp());
        await AppendDurably(log, Batch(1000, 1001));       // 0-1
        await AppendDurably(log, Batch(2000, 2005, 2001)); // 2-4
        await AppendDurably(log, Batch(1500));             // 5

        Assert.Equal(new OffsetAndTimestamp(0, 1001), log.FindOffsetForTimestamp(1001));
        Assert.Equal(new OffsetAndTimestamp(2, 2005), log.FindOffsetForTimestamp(1500));
        Assert.Equal(new OffsetAndTimestamp(5, 1500), log.FindOffsetForTimestamp(1500, fromOffset: 5));
        Assert.Null(log.FindOffsetForTimestamp(3000));

        // KIP-734 and KAFKA-16310: the record holding the largest timestamp, not its batch's end.
        Assert.Equal(new OffsetAndTimestamp(3, 2005), log.FindMaxTimestamp());

        // Records above the high watermark are not found.
        log.Append(Batch(9000), 0);
        Assert.Null(log.FindOffsetForTimestamp(8000));
        Assert.Equal(new OffsetAndTimestamp(3, 2005), log.FindMaxTimestamp());
    }

    [Fact]
    public async Task LeaderEpochLookupsAnswerWhereEachEpochEnds()
    {
        using var log = Open();
        Assert.Equal((-1, -1L), log.EndOffsetForEpoch(0));
        Assert.Equal(-1, log.EpochForOffset(0));

        await AppendDurably(log, Batch(1, 2), leaderEpoch: 0); // 0-1
        await AppendDurably(log, Batch(3), leaderEpoch: 0);    // 2
        var third = Batch(4, 5);
        await AppendDurably(log, third, leaderEpoch: 3);       // 3-4
        Assert.Equal(3, new RecordBatch(log.Read(3, 1, minOneBatch: true, log.LogEndOffset)).PartitionLeaderEpoch);

        Assert.Equal((0, 3L), log.EndOffsetForEpoch(0));
        Assert.Equal((0, 3L), log.EndOffsetForEpoch(2));
        Assert.Equal((3, 5L), log.EndOffsetForEpoch(3));
        Assert.Equal((-1, -1L), log.EndOffsetForEpoch(4));
        Assert.Equal((-1, -1L), log.EndOffsetForEpoch(-1));
        Assert.Equal([0, 0, 0, 3, 3], Enumerable.Range(0, 5).Select(o => log.EpochForOffset(o)));

        // A leader taking epoch 5 starts it at the log end before writing anything.
        log.StartEpoch(5);
        log.StartEpoch(4);
        Assert.Equal((3, 5L), log.EndOffsetForEpoch(3));
        Assert.Equal((3, 5L), log.EndOffsetForEpoch(4));
        Assert.Equal((5, 5L), log.EndOffsetForEpoch(5));
        await AppendDurably(log, Batch(6), leaderEpoch: 5);
        Assert.Equal((5, 6L), log.EndOffsetForEpoch(5));
        Assert.Equal(5, log.EpochForOffset(5));
    }

    [Fact]
    public async Task DeleteRecordsMovesTheLogStartForwardOnly()
    {
        using var log = Open(segmentBytes: 300);
        for (var i = 0; i < 3; i++)
        {
            await AppendDurably(log, Batch(100 + i), leaderEpoch: 0); // 0, 1, 2
        }

        for (var i = 3; i < 8; i++)
        {
            await AppendDurably(log, Batch(100 + i), leaderEpoch: 1); // 3-7
        }

        var segments = log.Segments();
        Assert.True(segments.Count > 2);
        Assert.Equal(log.SizeInBytes, segments.Sum(s => s.Size));
        Assert.Equal(0, segments[0].BaseOffset);
        Assert.True(segments.Zip(segments.Skip(1)).All(p => p.First.BaseOffset < p.Second.BaseOffset));
        Assert.Equal(107, segments.Max(s => s.MaxTimestamp));

        // Into the second segment: the first goes, the second starts at or below the new start.
        var sizeBefore = log.SizeInBytes;
        var target = segments[1].BaseOffset + 1;
        log.AdvanceLogStartOffset(target);
        Assert.Equal(target, log.LogStartOffset);
        Assert.True(log.SizeInBytes < sizeBefore);
        Assert.InRange(log.Segments()[0].BaseOffset, segments[1].BaseOffset, target);
        Assert.True(Batches(log.Read(target, 1 << 20, 0, log.HighWatermark, null))[0].LastOffset >= target);
        Assert.True(log.FindOffsetForTimestamp(0)!.Value.Offset >= target);

        log.AdvanceLogStartOffset(target - 1);
        Assert.Equal(target, log.LogStartOffset);

        // Past epoch 0: it is forgotten, and epoch 1 now starts at the log start.
        log.AdvanceLogStartOffset(4);
        Assert.Equal(1, log.EpochForOffset(4));
        Assert.Equal((0, 4L), log.EndOffsetForEpoch(0));
        Assert.Equal((1, 8L), log.EndOffsetForEpoch(1));

        // Never past the log end.
        log.AdvanceLogStartOffset(100);
        Assert.Equal(8, log.LogStartOffset);
        AssertOffsetsInOrder(log);
        Assert.Equal(new AppendResult(AppendStatus.Appended, 8) { LastOffset = 8, LogStartOffset = 8 }, log.Append(Batch(1), 1));
    }

    [Fact]
    public void IdempotentProducersAreCheckedAndDescribed()
    {
        using var log = Open();
        Assert.Empty(log.ActiveProducers());
        Assert.Equal(AppendStatus.Appended, log.Append(Idempotent(7, 0, 0, records: 2), 0).Status); // 0-1
        Assert.Equal(AppendStatus.Appended, log.Append(Batch(5), 0).Status);                        // 2, no producer id

        // A retry of a stored batch: its original offsets, nothing written.
        Assert.Equal(new AppendResult(AppendStatus.Duplicate, 0) { LastOffset = 1, LogStartOffset = 0 }, log.Append(Idempotent(7, 0, 0, records: 2), 0));
        Assert.Equal(3, log.LogEndOffset);

        // A gap in the sequence, and a first batch that does not start at 0: refused.
        Assert.Equal(new AppendResult(AppendStatus.OutOfOrderSequence, -1), log.Append(Idempotent(7, 0, 5), 0));
        Assert.Equal(new AppendResult(AppendStatus.OutOfOrderSequence, -1), log.Append(Idempotent(8, 0, 3), 0));
        Assert.Equal(3, log.LogEndOffset);

        Assert.Equal(new AppendResult(AppendStatus.Appended, 3) { LastOffset = 3, LogStartOffset = 0 }, log.Append(Idempotent(7, 0, 2), 0));

        // A new epoch starts at sequence 0 and fences the old one.
        Assert.Equal(AppendStatus.Appended, log.Append(Idempotent(7, 1, 0), 0).Status);
        Assert.Equal(new AppendResult(AppendStatus.InvalidProducerEpoch, -1), log.Append(Idempotent(7, 0, 3), 0));
        Assert.Equal(5, log.LogEndOffset);

        var producer = Assert.Single(log.ActiveProducers());
        Assert.Equal(new ActiveProducer(7, 1, 0, 1000), producer);
    }

    [Fact]
    public async Task TransactionsHoldTheLastStableOffsetAndAbortedOnesAreReported()
    {
        using var log = Open();
        await AppendDurably(log, Batch(1, 2));                                               // 0-1
        Assert.Equal(2, log.LastStableOffset);
        Assert.Empty(log.AbortedTransactions(0, 2));

        // Producer 7 opens a transaction at 2: the last stable offset stays there.
        Assert.Equal(2, (await AppendDurably(log, Transactional(7, 0, 0, records: 3))).BaseOffset); // 2-4
        Assert.Equal((5L, 2L), (log.HighWatermark, log.LastStableOffset));
        Assert.Equal(5, (await AppendDurably(log, Transactional(8, 0, 0, records: 2))).BaseOffset); // 5-6
        Assert.Equal(2, log.LastStableOffset);

        // Inside its transaction a producer writes transactionally only.
        Assert.Equal(new AppendResult(AppendStatus.InvalidTxnState, -1), log.Append(Idempotent(7, 0, 3), 0));
        var seven = log.ActiveProducers().Single(p => p.ProducerId == 7);
        Assert.Equal((2L, -1), (seven.CurrentTxnStartOffset, seven.CoordinatorEpoch));

        // 7 aborts (marker at 7): until the marker is durable the transaction is still unstable.
        Assert.Equal(7, log.Append(Marker(7, 0, 3, ControlRecordType.Abort), 0).BaseOffset);
        Assert.Equal(2, log.LastStableOffset);
        await log.WaitDurableAsync(8).WaitAsync(Patience);
        Assert.Equal((8L, 5L), (log.HighWatermark, log.LastStableOffset)); // 8's transaction holds it now
        Assert.Equal([new AbortedTransaction(7, 2)], log.AbortedTransactions(0, 8));
        Assert.Equal([new AbortedTransaction(7, 2)], log.AbortedTransactions(4, 5));
        Assert.Empty(log.AbortedTransactions(0, 2));  // the transaction starts at the bound
        Assert.Empty(log.AbortedTransactions(8, 20)); // its marker lies before the fetch
        seven = log.ActiveProducers().Single(p => p.ProducerId == 7);
        Assert.Equal((-1L, 3), (seven.CurrentTxnStartOffset, seven.CoordinatorEpoch));

        // Fencing: an older producer epoch, or an older coordinator epoch, is refused; the
        // coordinator may have bumped the producer's epoch for the marker (KIP-360, timeouts).
        Assert.Equal(new AppendResult(AppendStatus.TransactionCoordinatorFenced, -1), log.Append(Marker(7, 0, 2, ControlRecordType.Abort), 0));
        Assert.Equal(AppendStatus.Appended, (await AppendDurably(log, Marker(8, 1, 3, ControlRecordType.Commit))).Status); // 8
        Assert.Equal(new AppendResult(AppendStatus.InvalidProducerEpoch, -1), log.Append(Marker(8, 0, 3, ControlRecordType.Commit), 0));
        Assert.Equal((9L, 9L), (log.HighWatermark, log.LastStableOffset));
        Assert.Equal([new AbortedTransaction(7, 2)], log.AbortedTransactions(0, 9)); // a commit is not reported
        var eight = log.ActiveProducers().Single(p => p.ProducerId == 8);
        Assert.Equal(((short)1, -1, -1L), (eight.Epoch, eight.LastSequence, eight.CurrentTxnStartOffset));

        // The bumped epoch starts at sequence 0; a marker of an empty transaction changes nothing.
        Assert.Equal(AppendStatus.Appended, (await AppendDurably(log, Marker(8, 1, 3, ControlRecordType.Abort))).Status); // 9
        Assert.Equal(10, (await AppendDurably(log, Transactional(8, 1, 0))).BaseOffset);                               // 10
        Assert.Equal([new AbortedTransaction(7, 2)], log.AbortedTransactions(0, 11));
        Assert.Equal(10, log.LastStableOffset);
        Assert.Equal(10, log.ActiveProducers().Single(p => p.ProducerId == 8).CurrentTxnStartOffset);

        // DeleteRecords may pass an open transaction's start (as in Kafka): the last stable offset follows the log start.
        await AppendDurably(log, Batch(5)); // 11
        log.AdvanceLogStartOffset(11);
        Assert.Equal((12L, 11L), (log.HighWatermark, log.LastStableOffset));
        Assert.Equal(AppendStatus.Appended, (await AppendDurably(log, Marker(8, 1, 4, ControlRecordType.Commit))).Status); // 12
        Assert.Equal(13, log.LastStableOffset);
        AssertOffsetsInOrder(log);
    }

    [Fact]
    public void AClosedLogRefusesAppends()
    {
        var log = Open();
        log.Append(Batch(1), 0);
        log.Dispose();
        Assert.Throws<ObjectDisposedException>(() => log.Append(Batch(2), 0));
    }
}
