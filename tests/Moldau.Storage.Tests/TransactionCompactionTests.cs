using System.Text;
using Microsoft.Extensions.Time.Testing;
using Moldau.Protocol.Records;
using Moldau.Storage.Cleaning;

namespace Moldau.Storage.Tests;

/// <summary>
/// Compaction of a log with transactions, by Kafka's LogCleaner rules: aborted records go (and
/// never hide a committed value), markers stay while their transaction has batches left and then
/// until delete.retention.ms has passed, the transaction index follows, nothing at or past the
/// last stable offset is cleaned, and a crash in the middle of a swap keeps the right index.
/// </summary>
public sealed class TransactionCompactionTests : IDisposable
{
    private static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-txcompact-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly FakeTimeProvider _time = new(Start);
    private readonly CleanerSettings _settings = new() { DeleteRetentionMs = 60_000 };

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private PartitionLog Open(bool cleanShutdown = false) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 300, IndexIntervalBytes = 100, SyncBeforeAck = false, CleanShutdown = cleanShutdown }, _time);

    private static long Plain(PartitionLog log, string key, string value) =>
        log.Append(RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value), 1000)]), 0).BaseOffset;

    private static long Txn(PartitionLog log, long producerId, int sequence, string key, string value) =>
        log.Append(RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes(key), Encoding.UTF8.GetBytes(value), 1000)], producerId: producerId, producerEpoch: 0, baseSequence: sequence, attributes: 0x10), 0).BaseOffset;

    private static long End(PartitionLog log, long producerId, ControlRecordType type) =>
        log.Append(ControlRecordBatch.Build(producerId, 0, 1, type, 1000), 0).BaseOffset;

    /// <summary>The log's batches below <paramref name="upTo"/>, read segment after segment.</summary>
    private static List<RecordBatch> All(PartitionLog log, long upTo)
    {
        var batches = new List<RecordBatch>();
        var offset = log.LogStartOffset;
        while (offset < upTo)
        {
            var bytes = log.Read(offset, 1 << 24, minOneBatch: true, upTo);
            if (bytes.IsEmpty)
            {
                break;
            }

            while (bytes.Length >= RecordBatch.HeaderSize)
            {
                var batch = new RecordBatch(bytes[..(int)RecordBatch.DeclaredSize(bytes.Span)].ToArray());
                Assert.True(batch.IsCrcValid());
                batches.Add(batch);
                offset = batch.LastOffset + 1;
                bytes = bytes[batch.TotalSize..];
            }
        }

        return batches;
    }

    /// <summary>Each batch's base offset, whether it is a marker, and its (key, value) records.</summary>
    private static List<(long Offset, bool Control, List<(string Key, string Value)> Records)> Batches(PartitionLog log)
    {
        var result = new List<(long, bool, List<(string, string)>)>();
        foreach (var batch in All(log, log.LogEndOffset))
        {
            var records = new List<(string, string)>();
            if (!batch.IsControl)
            {
                foreach (var r in batch.GetRecords())
                {
                    records.Add((Encoding.UTF8.GetString(r.Key!.Value.Span), Encoding.UTF8.GetString(r.Value!.Value.Span)));
                }
            }

            result.Add((batch.BaseOffset, batch.IsControl, records));
        }

        return result;
    }

    /// <summary>What a read_committed consumer sees: records of batches not in an aborted transaction.</summary>
    private static Dictionary<string, string> Committed(PartitionLog log)
    {
        var aborted = log.AbortedTransactions(log.LogStartOffset, log.LogEndOffset);
        var seen = new Dictionary<string, string>();
        var skipping = new HashSet<long>();
        var pending = aborted.OrderBy(a => a.FirstOffset).ToList();
        foreach (var batch in All(log, log.LastStableOffset))
        {
            while (pending.Count > 0 && pending[0].FirstOffset <= batch.LastOffset)
            {
                skipping.Add(pending[0].ProducerId);
                pending.RemoveAt(0);
            }

            if (batch.IsControl)
            {
                skipping.Remove(batch.ProducerId);
                continue;
            }

            if (batch.IsTransactional && skipping.Contains(batch.ProducerId))
            {
                continue;
            }

            foreach (var r in batch.GetRecords())
            {
                seen[Encoding.UTF8.GetString(r.Key!.Value.Span)] = Encoding.UTF8.GetString(r.Value!.Value.Span);
            }
        }

        return seen;
    }

    private static void Roll(PartitionLog log, int count = 8)
    {
        for (var i = 0; i < count; i++)
        {
            Plain(log, $"filler{i}", new string('f', 60));
        }
    }

    [Fact]
    public void AbortedRecordsGoAndTheirMarkerFollowsAfterTheDeleteRetention()
    {
        using var log = Open();
        Plain(log, "k", "committed-1");                       // 0
        var aborted = Txn(log, 7, 0, "k", "aborted");         // 1: would supersede k if it counted
        Txn(log, 8, 0, "j", "committed-txn");                 // 2
        var abortMarker = End(log, 7, ControlRecordType.Abort);  // 3
        var commitMarker = End(log, 8, ControlRecordType.Commit); // 4
        Plain(log, "other", "x");                             // 5
        Txn(log, 7, 1, "z", "p7-last");                       // 6: 7's last batch, committed
        End(log, 7, ControlRecordType.Commit);                // 7
        Roll(log);
        var before = Committed(log);
        Assert.Equal("committed-1", before["k"]);
        Assert.Single(Directory.GetFiles(_dir, "*.txnindex")); // in the segment of the ABORT marker

        // Pass 1: the aborted batch goes (it is not 7's last batch); k keeps its committed value;
        // the ABORT marker stays, and its index entry, as the pass still saw the transaction's batch.
        Assert.True(log.Clean(_settings).SegmentsRewritten > 0);
        var batches = Batches(log);
        Assert.DoesNotContain(batches, b => b.Offset == aborted);
        Assert.Contains(batches, b => b.Offset == abortMarker && b.Control);
        Assert.Contains(batches, b => b.Offset == commitMarker && b.Control);
        Assert.Equal(before.Where(p => !p.Key.StartsWith("filler", StringComparison.Ordinal)), Committed(log).Where(p => !p.Key.StartsWith("filler", StringComparison.Ordinal)));
        Assert.Equal([new AbortedTransaction(7, aborted)], log.AbortedTransactions(0, log.LogEndOffset));

        // Pass 2: no batch of the aborted transaction is left: its marker may go, after delete.retention.ms.
        log.Clean(_settings);
        Assert.Contains(Batches(log), b => b.Offset == abortMarker && b.Control);
        Assert.Empty(log.AbortedTransactions(0, log.LogEndOffset));

        // Past the horizon: the marker is gone (the committed transaction's stays: its batch is the latest of j).
        _time.Advance(TimeSpan.FromMinutes(2));
        log.Clean(_settings);
        batches = Batches(log);
        Assert.DoesNotContain(batches, b => b.Offset == abortMarker);
        Assert.Contains(batches, b => b.Offset == commitMarker && b.Control);
        Assert.Empty(Directory.GetFiles(_dir, "*.txnindex"));
        Assert.Equal("committed-1", Committed(log)["k"]);
    }

    [Fact]
    public void ACommitMarkerGoesOnceItsTransactionsRecordsAreSuperseded()
    {
        using var log = Open();
        Txn(log, 8, 0, "k", "old");                            // 0
        var marker = End(log, 8, ControlRecordType.Commit);    // 1
        Plain(log, "k", "new");                                // 2: supersedes 8's record
        Plain(log, "q", "keeps 8 from being the last producer batch");
        Txn(log, 8, 1, "m", "8-last");                         // 8's last batch
        End(log, 8, ControlRecordType.Commit);
        Roll(log);

        // Pass 1: 8's first batch goes, but the pass saw it: the marker stays. Pass 2: the marker
        // may go, and gets its delete horizon. A pass after the horizon removes it.
        log.Clean(_settings);
        Assert.Contains(Batches(log), b => b.Offset == marker);
        log.Clean(_settings);
        Assert.Contains(Batches(log), b => b.Offset == marker);
        _time.Advance(TimeSpan.FromMinutes(2));
        log.Clean(_settings);
        Assert.DoesNotContain(Batches(log), b => b.Offset == marker);
        Assert.Equal("new", Committed(log)["k"]);
    }

    [Fact]
    public void NothingAtOrPastTheLastStableOffsetIsCleaned()
    {
        using var log = Open();
        Plain(log, "k", "v1");
        var open = Txn(log, 7, 0, "k", "in-open-txn");
        Roll(log, 12);
        Plain(log, "k", "v2");
        Roll(log, 12);
        Assert.Equal(open, log.LastStableOffset);

        log.Clean(_settings);
        var batches = Batches(log);
        Assert.Contains(batches, b => b.Offset == open && b.Records.Count == 1); // untouched
        Assert.Contains(batches, b => b.Records.Contains(("k", "v2")));
        Assert.Contains(batches, b => b.Records.Contains(("k", "v1"))); // below the LSO, but k's later value lies past it
    }

    [Fact]
    public void ACrashInTheMiddleOfASwapKeepsTheCleanedTxnIndex()
    {
        using (var log = Open())
        {
            Txn(log, 7, 0, "k", "aborted");
            End(log, 7, ControlRecordType.Abort);
            Plain(log, "p", "x");
            Roll(log);
        }

        var index = Path.Combine(_dir, "00000000000000000000.txnindex");
        var entry = File.ReadAllBytes(index);
        Assert.Equal(TransactionIndex.EntrySize, entry.Length);

        // Crashed after the cleaned index became .swap (empty: nothing kept) and the segment's
        // .swap was written: opening completes the swap, the index goes with the old segment.
        var segment = Path.Combine(_dir, "00000000000000000000.log");
        File.Copy(segment, segment + ".swap");
        File.WriteAllBytes(index + ".swap", []);
        using (var reopened = Open(cleanShutdown: true))
        {
            Assert.False(File.Exists(index));
            Assert.Empty(Directory.GetFiles(_dir, "*.swap"));
        }

        // Crashed after the index was swapped in but before the segment: the index in place is the cleaned one.
        File.WriteAllBytes(index, entry);
        File.Copy(segment, segment + ".swap");
        using (var reopened = Open(cleanShutdown: true))
        {
            Assert.Equal(entry, File.ReadAllBytes(index));
        }

        // Crashed before the segment's swap was made: the cleaned index is an orphan and goes.
        File.WriteAllBytes(index + ".swap", []);
        File.WriteAllBytes(index + ".cleaned", [1, 2]);
        using (var reopened = Open(cleanShutdown: true))
        {
            Assert.Equal(entry, File.ReadAllBytes(index));
            Assert.Empty(Directory.GetFiles(_dir, "*.swap"));
            Assert.Empty(Directory.GetFiles(_dir, "*.cleaned"));
        }
    }
}
