using System.Buffers.Binary;
using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// Transactions in the local log, on disk as Kafka keeps them: the <c>.txnindex</c> of each
/// segment, the open transactions in the producer snapshot, and what recovery rebuilds after a
/// crash (the files as a kill -9 leaves them) or a power loss (only what was synced).
/// </summary>
public sealed class TransactionLogTests : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "moldau-txn-" + Guid.NewGuid().ToString("N")[..10]);

    private string Dir => Path.Combine(_root, "t-0");

    public void Dispose()
    {
        if (Directory.Exists(_root))
        {
            Directory.Delete(_root, recursive: true);
        }
    }

    private static byte[] Plain(int records = 1, int size = 10) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, records).Select(i => new RecordToWrite(null, new byte[size], 1000 + i)).ToList());

    private static byte[] Transactional(long producerId, short epoch, int sequence, int records = 1, int size = 10) =>
        RecordBatchBuilder.Build(
            Enumerable.Range(0, records).Select(i => new RecordToWrite(Encoding.UTF8.GetBytes($"k{i}"), new byte[size], 2000 + i)).ToList(),
            producerId: producerId,
            producerEpoch: epoch,
            baseSequence: sequence,
            attributes: 0x10); // transactional

    private static byte[] Marker(long producerId, short epoch, ControlRecordType type, int coordinatorEpoch = 5) =>
        ControlRecordBatch.Build(producerId, epoch, coordinatorEpoch, type, 3000);

    private static PartitionLogOptions Options(long segmentBytes = 1L << 30, bool cleanShutdown = false, long recoveryPoint = 0, bool syncBeforeAck = false) =>
        new() { SegmentBytes = segmentBytes, IndexIntervalBytes = 100, CleanShutdown = cleanShutdown, RecoveryPoint = recoveryPoint, SyncBeforeAck = syncBeforeAck };

    private static PartitionLog Open(string dir, PartitionLogOptions options) => PartitionLog.Open(dir, options, TimeProvider.System);

    private static string TxnIndexOf(string dir, long baseOffset) => Path.Combine(dir, baseOffset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".txnindex");

    /// <summary>The files as a kill -9 leaves them: everything written is in the page cache, nothing of a clean stop.</summary>
    private static string CopyAsCrashed(string dir, string name)
    {
        var copy = Path.Combine(Path.GetDirectoryName(dir)!, name);
        Directory.CreateDirectory(copy);
        foreach (var file in Directory.GetFiles(dir))
        {
            File.Copy(file, Path.Combine(copy, Path.GetFileName(file)));
        }

        return copy;
    }

    private static void AssertSameTransactions(PartitionLog expected, PartitionLog actual)
    {
        Assert.Equal(expected.LogEndOffset, actual.LogEndOffset);
        Assert.Equal(expected.LastStableOffset, actual.LastStableOffset);
        Assert.Equal(expected.AbortedTransactions(0, expected.LogEndOffset), actual.AbortedTransactions(0, actual.LogEndOffset));
        Assert.Equal(
            expected.ActiveProducers().OrderBy(p => p.ProducerId).Select(p => (p.ProducerId, p.Epoch, p.CurrentTxnStartOffset, p.CoordinatorEpoch)),
            actual.ActiveProducers().OrderBy(p => p.ProducerId).Select(p => (p.ProducerId, p.Epoch, p.CurrentTxnStartOffset, p.CoordinatorEpoch)));
        for (var i = 0; i < expected.Segments().Count; i++)
        {
            var baseOffset = expected.Segments()[i].BaseOffset;
            var path = TxnIndexOf(actual.Directory, baseOffset);
            var original = TxnIndexOf(expected.Directory, baseOffset);
            Assert.Equal(File.Exists(original) ? File.ReadAllBytes(original) : null, File.Exists(path) ? File.ReadAllBytes(path) : null);
        }
    }

    [Fact]
    public void AnAbortIsWrittenToTheTxnIndexInKafkasLayout()
    {
        const long pid = 0x0102030405060708;
        using var log = Open(Dir, Options());
        log.Append(Plain(), 0);                                        // 0
        log.Append(Transactional(pid, 3, 0, records: 2), 0);          // 1-2
        log.Append(Transactional(42, 0, 0), 0);                       // 3: another producer's, still open
        log.Append(Transactional(43, 0, 0), 0);                       // 4
        log.Append(Marker(43, 0, ControlRecordType.Commit), 0);       // 5: a commit writes no entry
        Assert.False(File.Exists(TxnIndexOf(Dir, 0)));
        log.Append(Marker(pid, 3, ControlRecordType.Abort), 0);       // 6

        // AbortedTxn: version int16 0, producer id, first offset, last offset (the marker), and the
        // last stable offset once it was written: 42's transaction still holds it at 3.
        byte[] expected =
        [
            0x00, 0x00,
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
            0, 0, 0, 0, 0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 6,
            0, 0, 0, 0, 0, 0, 0, 3,
        ];
        Assert.Equal(expected, File.ReadAllBytes(TxnIndexOf(Dir, 0)));

        // With nothing else open, the entry's last stable offset is the offset after its marker.
        log.Append(Transactional(pid, 4, 0), 0);                      // 7 (the coordinator bumped the epoch)
        log.Append(Marker(42, 0, ControlRecordType.Commit), 0);       // 8
        log.Append(Marker(pid, 4, ControlRecordType.Abort), 0);       // 9
        var second = File.ReadAllBytes(TxnIndexOf(Dir, 0)).AsSpan(TransactionIndex.EntrySize);
        Assert.Equal(TransactionIndex.EntrySize, second.Length);
        Assert.Equal((pid, 7L, 9L, 10L), (BinaryPrimitives.ReadInt64BigEndian(second[2..]), BinaryPrimitives.ReadInt64BigEndian(second[10..]), BinaryPrimitives.ReadInt64BigEndian(second[18..]), BinaryPrimitives.ReadInt64BigEndian(second[26..])));
        Assert.Equal([new AbortedTransaction(pid, 1), new AbortedTransaction(pid, 7)], log.AbortedTransactions(0, 10));
        Assert.Equal([new AbortedTransaction(pid, 7)], log.AbortedTransactions(7, 8));
    }

    [Fact]
    public void AKafkaTxnIndexIsReadAsItIs()
    {
        // A segment as Kafka left it: two aborted transactions in a .txnindex written by hand.
        using (var log = Open(Dir, Options()))
        {
            for (var i = 0; i < 10; i++)
            {
                log.Append(Plain(), 0);
            }
        }

        var bytes = new byte[2 * TransactionIndex.EntrySize];
        TransactionIndex.Write(bytes, new AbortedTxnEntry(9, 1, 3, 4));
        TransactionIndex.Write(bytes.AsSpan(TransactionIndex.EntrySize), new AbortedTxnEntry(11, 2, 7, 8));
        File.WriteAllBytes(TxnIndexOf(Dir, 0), bytes);

        using var reopened = Open(Dir, Options(cleanShutdown: true));
        Assert.Equal([new AbortedTransaction(9, 1), new AbortedTransaction(11, 2)], reopened.AbortedTransactions(0, 10));
        Assert.Equal([new AbortedTransaction(11, 2)], reopened.AbortedTransactions(4, 10));
        Assert.Equal([new AbortedTransaction(9, 1)], reopened.AbortedTransactions(0, 2)); // stops: 9's entry has LSO 4 >= 2
        Assert.Empty(reopened.AbortedTransactions(8, 10));
        Assert.Equal(bytes, File.ReadAllBytes(TxnIndexOf(Dir, 0))); // read, not rewritten
    }

    [Fact]
    public void ATransactionSpanningSegmentsIsIndexedWhereItsMarkerIsAndFoundFromItsStart()
    {
        using var log = Open(Dir, Options(segmentBytes: 400));
        log.Append(Transactional(7, 0, 0), 0); // 0
        for (var i = 1; i < 30; i++)
        {
            log.Append(Transactional(7, 0, i, size: 40), 0);
        }

        log.Append(Marker(7, 0, ControlRecordType.Abort), 0); // 30
        var segments = log.Segments();
        Assert.True(segments.Count > 5);
        var markerSegment = segments.Last(s => s.BaseOffset <= 30).BaseOffset;
        Assert.True(markerSegment > 0);
        Assert.Equal([markerSegment], Directory.GetFiles(Dir, "*.txnindex").Select(f => long.Parse(Path.GetFileNameWithoutExtension(f), System.Globalization.CultureInfo.InvariantCulture)));

        // A fetch in the first segment, or in the middle, learns of the abort from the marker's segment.
        Assert.Equal([new AbortedTransaction(7, 0)], log.AbortedTransactions(0, 3));
        Assert.Equal([new AbortedTransaction(7, 0)], log.AbortedTransactions(segments[2].BaseOffset, segments[3].BaseOffset));
        Assert.Empty(log.AbortedTransactions(31, 40));
        Assert.Equal(31, log.LastStableOffset);
    }

    [Fact]
    public async Task ATxnIndexIsRetiredAndRemovedWithItsSegment()
    {
        using var log = Open(Dir, Options(segmentBytes: 300) with { FileDeleteDelay = TimeSpan.FromMilliseconds(100) });
        log.Append(Transactional(7, 0, 0, size: 40), 0);
        log.Append(Marker(7, 0, ControlRecordType.Abort), 0);
        for (var i = 0; i < 10; i++)
        {
            log.Append(Plain(1, 60), 0);
        }

        var index = Assert.Single(Directory.GetFiles(Dir, "*.txnindex"));
        log.AdvanceLogStartOffset(log.Segments()[^1].BaseOffset);
        Assert.False(File.Exists(index));
        Assert.True(File.Exists(index + ".deleted")); // kept for in-flight reads until file.delete.delay.ms
        Assert.Empty(log.AbortedTransactions(log.LogStartOffset, log.LogEndOffset));
        for (var i = 0; i < 200 && File.Exists(index + ".deleted"); i++)
        {
            await Task.Delay(25);
        }

        Assert.False(File.Exists(index + ".deleted"));
    }

    [Fact]
    public void RecoveryAfterACrashRebuildsTheTxnIndexesAndTheOpenTransactions()
    {
        using var log = Open(Dir, Options(segmentBytes: 500));
        var offsetsBefore = new List<long>();
        for (var round = 0; round < 6; round++)
        {
            // Three producers interleaved; each round one aborts, one commits, one stays open across rounds.
            long a = 100 + round, b = 200 + round;
            log.Append(Transactional(a, 0, 0, size: 30), 0);
            log.Append(Plain(2, 30), 0);
            log.Append(Transactional(b, 0, 0, size: 30), 0);
            log.Append(Transactional(a, 0, 1, size: 30), 0);
            if (round % 2 == 0)
            {
                log.Append(Transactional(7, (short)round, 0, size: 30), 0);
            }
            else
            {
                log.Append(Marker(7, (short)(round - 1), ControlRecordType.Abort), 0);
            }

            log.Append(Marker(a, 0, ControlRecordType.Abort), 0);
            log.Append(Marker(b, 0, ControlRecordType.Commit), 0);
        }

        log.Append(Transactional(7, 6, 0), 0); // open at the crash
        log.Append(Transactional(300, 0, 0), 0);
        log.Flush();
        Assert.True(log.Segments().Count > 4);
        Assert.True(Directory.GetFiles(Dir, "*.txnindex").Length > 1);
        Assert.True(log.LastStableOffset < log.HighWatermark);

        // Every segment read through (no recovery point), with the index files lost or kept.
        var kept = CopyAsCrashed(Dir, "kept");
        using (var recovered = Open(kept, Options(segmentBytes: 500)))
        {
            AssertSameTransactions(log, recovered);
        }

        var lost = CopyAsCrashed(Dir, "lost");
        foreach (var index in Directory.GetFiles(lost, "*.txnindex"))
        {
            File.Delete(index);
        }

        using (var recovered = Open(lost, Options(segmentBytes: 500)))
        {
            AssertSameTransactions(log, recovered);
        }

        // A recovery point in the middle: the segments below it are trusted (their .txnindex
        // files with them), the rest read through with the producer state of the trusted ones, so
        // a transaction that started in a trusted segment and aborted in a later one is indexed.
        var middle = log.Segments()[log.Segments().Count / 2].BaseOffset;
        var partly = CopyAsCrashed(Dir, "partly");
        foreach (var index in Directory.GetFiles(partly, "*.txnindex").Where(f => long.Parse(Path.GetFileNameWithoutExtension(f), System.Globalization.CultureInfo.InvariantCulture) >= middle))
        {
            File.Delete(index);
        }

        using (var recovered = Open(partly, Options(segmentBytes: 500, recoveryPoint: middle)))
        {
            AssertSameTransactions(log, recovered);
        }
    }

    [Fact]
    public void ATornAbortMarkerReopensItsTransaction()
    {
        long markerAt;
        using (var log = Open(Dir, Options()))
        {
            log.Append(Plain(), 0);                                    // 0
            log.Append(Transactional(7, 0, 0, records: 3), 0);         // 1-3
            log.Append(Transactional(8, 0, 0), 0);                     // 4
            log.Append(Marker(8, 0, ControlRecordType.Abort), 0);      // 5
            markerAt = log.Append(Marker(7, 0, ControlRecordType.Abort), 0).BaseOffset; // 6
            Assert.Equal(7, log.LastStableOffset);
            Assert.Equal(2, log.AbortedTransactions(0, 7).Count);
        }

        // The last marker torn by the crash (and the clean-stop snapshot gone with the stop).
        foreach (var snapshot in Directory.GetFiles(Dir, "*.snapshot"))
        {
            File.Delete(snapshot);
        }

        var path = Path.Combine(Dir, "00000000000000000000.log");
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..^5]);

        // (The offset index proves the marker's offset was handed out: the log goes on after it.)
        using var reopened = Open(Dir, Options());
        var end = reopened.LogEndOffset;
        Assert.InRange(end, markerAt, markerAt + 1);
        Assert.Equal(1, reopened.LastStableOffset); // 7's transaction is open again
        Assert.Equal([new AbortedTransaction(8, 4)], reopened.AbortedTransactions(0, end));
        Assert.Equal(TransactionIndex.EntrySize, new FileInfo(TxnIndexOf(Dir, 0)).Length);
        Assert.Equal(1, reopened.ActiveProducers().Single(p => p.ProducerId == 7).CurrentTxnStartOffset);

        // The coordinator writes the marker again after its restart.
        Assert.Equal(end, reopened.Append(Marker(7, 0, ControlRecordType.Abort), 0).BaseOffset);
        Assert.Equal([new AbortedTransaction(8, 4), new AbortedTransaction(7, 1)], reopened.AbortedTransactions(0, end + 1));
        Assert.Equal(end + 1, reopened.LastStableOffset);
    }

    [Fact]
    public void TheSnapshotCarriesOpenTransactionsAcrossACleanRestart()
    {
        using (var log = Open(Dir, Options(segmentBytes: 300)))
        {
            log.Append(Transactional(7, 2, 0, size: 40), 0);               // 0: 7's transaction
            log.Append(Transactional(9, 0, 0, size: 40), 0);               // 1
            log.Append(Marker(9, 1, ControlRecordType.Commit, 4), 0);      // 2: 9 committed at a bumped epoch, coordinator epoch 4
            for (var i = 0; i < 8; i++)
            {
                log.Append(Plain(1, 60), 0);
            }

            // The segment holding 7's first offset leaves the log (DeleteRecords may pass an open
            // transaction, as in Kafka): only the snapshot still knows where the transaction began.
            log.AdvanceLogStartOffset(log.Segments()[2].BaseOffset);
            Assert.Equal(log.LogStartOffset, log.LastStableOffset);
        }

        // Kafka's snapshot v1: one 46-byte entry per producer, 7's with its open transaction at 0.
        var snapshot = Assert.Single(Directory.GetFiles(Dir, "*.snapshot"));
        var bytes = File.ReadAllBytes(snapshot);
        Assert.Equal(1, BinaryPrimitives.ReadInt16BigEndian(bytes));
        Assert.Equal(Crc32C.Compute(bytes.AsSpan(6)), BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(2)));
        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(6)));
        var entries = Enumerable.Range(0, 2).Select(i => bytes.AsSpan(10 + (46 * i), 46).ToArray()).ToDictionary(e => BinaryPrimitives.ReadInt64BigEndian(e));
        Assert.Equal((2, 0, 0L, 0L, -1, 0L), Fields(entries[7]));
        Assert.Equal((1, -1, -1L, 0L, 4, -1L), Fields(entries[9])); // a new epoch's marker: no batch of it yet

        using var reopened = Open(Dir, Options(segmentBytes: 300, cleanShutdown: true));
        var seven = reopened.ActiveProducers().Single(p => p.ProducerId == 7);
        Assert.Equal(((short)2, 0L), (seven.Epoch, seven.CurrentTxnStartOffset));
        Assert.Equal(reopened.LogStartOffset, reopened.LastStableOffset);
        Assert.Equal(AppendStatus.TransactionCoordinatorFenced, reopened.Append(Marker(9, 1, ControlRecordType.Abort, 3), 0).Status);

        var end = reopened.LogEndOffset;
        reopened.Append(Marker(7, 2, ControlRecordType.Abort), 0);
        Assert.Equal(end + 1, reopened.LastStableOffset);
        Assert.Equal([new AbortedTransaction(7, 0)], reopened.AbortedTransactions(reopened.LogStartOffset, end + 1));

        static (short Epoch, int LastSeq, long LastOffset, long Delta, int CoordinatorEpoch, long TxnFirst) Fields(byte[] e) =>
            (BinaryPrimitives.ReadInt16BigEndian(e.AsSpan(8)), BinaryPrimitives.ReadInt32BigEndian(e.AsSpan(10)), BinaryPrimitives.ReadInt64BigEndian(e.AsSpan(14)),
             BinaryPrimitives.ReadInt32BigEndian(e.AsSpan(22)), BinaryPrimitives.ReadInt32BigEndian(e.AsSpan(34)), BinaryPrimitives.ReadInt64BigEndian(e.AsSpan(38)));
    }

    [Fact]
    public void AfterACrashRecoveryStartsFromTheSnapshotAndReadsOnlyThePastIt()
    {
        long firstKept;
        using (var log = Open(Dir, Options(segmentBytes: 300)))
        {
            log.Append(Transactional(7, 0, 0, size: 40), 0); // 0: open across the restarts
            for (var i = 0; i < 6; i++)
            {
                log.Append(Plain(1, 60), 0);
            }
        }

        // Restarted cleanly (the snapshot at the log end stays), more appends, then killed.
        var crashed = "";
        using (var log = Open(Dir, Options(segmentBytes: 300, cleanShutdown: true)))
        {
            Assert.Equal(0, log.LastStableOffset);
            for (var i = 0; i < 6; i++)
            {
                log.Append(Plain(1, 60), 0);
            }

            log.Append(Marker(7, 0, ControlRecordType.Abort), 0);
            log.Append(Plain(1, 60), 0);
            log.Flush();
            crashed = CopyAsCrashed(Dir, "crashed");
        }

        // The segments before the snapshot are gone (so only the snapshot knows 7's transaction
        // began at 0): the abort is indexed all the same, which a replay of the log alone can't do.
        var snapshotAt = long.Parse(Path.GetFileNameWithoutExtension(Assert.Single(Directory.GetFiles(crashed, "*.snapshot"))), System.Globalization.CultureInfo.InvariantCulture);
        var segments = Directory.GetFiles(crashed, "*.log").Select(f => long.Parse(Path.GetFileNameWithoutExtension(f), System.Globalization.CultureInfo.InvariantCulture)).Order().ToList();
        firstKept = segments.Last(b => b <= snapshotAt);
        foreach (var b in segments.Where(b => b < firstKept))
        {
            File.Delete(Path.Combine(crashed, LogSegment.FileName(b)));
        }

        foreach (var index in Directory.GetFiles(crashed, "*.txnindex"))
        {
            File.Delete(index);
        }

        using var recovered = Open(crashed, Options(segmentBytes: 300, recoveryPoint: firstKept));
        Assert.Equal([new AbortedTransaction(7, 0)], recovered.AbortedTransactions(firstKept, recovered.LogEndOffset));
        Assert.Equal(recovered.HighWatermark, recovered.LastStableOffset);
        Assert.Equal(-1, recovered.ActiveProducers().Single(p => p.ProducerId == 7).CurrentTxnStartOffset);
    }

    /// <summary>Keeps what was synced of the .log and .txnindex files and which directory entries are durable.</summary>
    private sealed class PowerLoss(string directory) : IFileLayerObserver
    {
        private readonly Lock _lock = new();
        private readonly Dictionary<string, long> _synced = [];
        private readonly HashSet<string> _entryNotDurable = [];
        private volatile bool _off;

        private bool Mine(string path) => path.StartsWith(directory, StringComparison.Ordinal);

        public void BeforeWrite(string path)
        {
            if (_off && Mine(path))
            {
                throw new IOException("the power is off");
            }
        }

        public void Created(string path)
        {
            lock (_lock)
            {
                _entryNotDurable.Add(path);
                _synced[path] = 0;
            }
        }

        public void Synced(string path, long length)
        {
            lock (_lock)
            {
                _synced[path] = Math.Max(length, _synced.GetValueOrDefault(path));
            }
        }

        public void DirectorySynced(string dir)
        {
            lock (_lock)
            {
                _entryNotDurable.RemoveWhere(p => Path.GetDirectoryName(p) == dir);
            }
        }

        public void PowerOff() => _off = true;

        public void DropUnsynced()
        {
            lock (_lock)
            {
                foreach (var file in Directory.GetFiles(directory).Where(f => f.EndsWith(".log", StringComparison.Ordinal) || f.EndsWith(".txnindex", StringComparison.Ordinal)))
                {
                    if (_entryNotDurable.Contains(file))
                    {
                        File.Delete(file);
                    }
                    else if (_synced.TryGetValue(file, out var length))
                    {
                        using var handle = File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite);
                        RandomAccess.SetLength(handle, Math.Min(length, RandomAccess.GetLength(handle)));
                    }
                }
            }
        }
    }

    [Fact]
    public async Task TheTxnIndexesBelowTheRecoveryPointSurviveAPowerLoss()
    {
        var power = new PowerLoss(Dir);
        long recoveryPoint;
        IReadOnlyList<AbortedTransaction> aborted;
        using (var runtime = new StorageRuntime(power))
        {
            var log = PartitionLog.Open(Dir, Options(segmentBytes: 400, syncBeforeAck: true), TimeProvider.System, runtime);
            for (var round = 0; round < 5; round++)
            {
                log.Append(Transactional(7, (short)round, 0, size: 40), 0);
                log.Append(Plain(2, 60), 0);
                log.Append(Marker(7, (short)round, ControlRecordType.Abort), 0);
                log.Append(Plain(2, 60), 0);
                await log.WaitDurableAsync(log.LogEndOffset).WaitAsync(TimeSpan.FromSeconds(30));
            }

            recoveryPoint = log.RecoveryPoint;
            aborted = log.AbortedTransactions(0, log.LogEndOffset);
            Assert.Equal(5, aborted.Count);
            Assert.True(log.Segments().Count > 3);
            power.PowerOff();
            log.Dispose(); // its writes fail: the power is off
        }

        power.DropUnsynced();
        using var recovered = Open(Dir, Options(segmentBytes: 400, recoveryPoint: recoveryPoint));
        Assert.Equal(aborted, recovered.AbortedTransactions(0, recovered.LogEndOffset));
    }

    [Fact]
    public void WithoutTransactionsAppendsAndReadCommittedLookupsAllocateNothing()
    {
        using var log = Open(Dir, new PartitionLogOptions { IndexIntervalBytes = 1 << 30, SyncBeforeAck = false });
        const int count = 2000;
        var plain = Plain();
        var idempotent = Enumerable.Range(0, count + 10).Select(i => RecordBatchBuilder.Build([new(null, new byte[10], 1000)], producerId: 5, producerEpoch: 0, baseSequence: i)).ToArray();
        for (var i = 0; i < 10; i++)
        {
            log.Append(plain, 0);
            log.Append(idempotent[i], 0);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        long stable = 0;
        for (var i = 10; i < count + 10; i++)
        {
            log.Append(plain, 0);
            log.Append(idempotent[i], 0);
            stable += log.LastStableOffset + log.AbortedTransactions(0, log.LastStableOffset).Count;
        }

        // Nothing per append: anything a single allocation per append costs (a closure, an
        // enumerator: 24 bytes or more, 4,000 times) fails this; an occasional allocation of the
        // log's own machinery that lands on this thread (a sync hand-off, a queue growing) does not.
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < 8 * 2 * count, $"{allocated} bytes allocated over {2 * count} appends");
        Assert.True(stable > 0);
    }

    [Fact]
    public void ProducerSnapshotsRoundTripInKafkasLayout()
    {
        // Written by hand as Kafka's ProducerStateManager writes v1: an idempotent producer, one
        // with an open transaction, one known only by its epoch and coordinator epoch.
        var entries = new (long Pid, short Epoch, int LastSeq, long LastOffset, int Delta, long Timestamp, int CoordinatorEpoch, long TxnFirst)[]
        {
            (1, 0, 9, 19, 4, 5000, -1, -1),
            (2, 3, 0, 30, 2, 6000, 7, 28),
            (3, 1, -1, -1, 0, 7000, 8, -1),
        };
        var bytes = new byte[10 + (46 * entries.Length)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, 1);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(6), entries.Length);
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            var span = bytes.AsSpan(10 + (46 * i));
            BinaryPrimitives.WriteInt64BigEndian(span, e.Pid);
            BinaryPrimitives.WriteInt16BigEndian(span[8..], e.Epoch);
            BinaryPrimitives.WriteInt32BigEndian(span[10..], e.LastSeq);
            BinaryPrimitives.WriteInt64BigEndian(span[14..], e.LastOffset);
            BinaryPrimitives.WriteInt32BigEndian(span[22..], e.Delta);
            BinaryPrimitives.WriteInt64BigEndian(span[26..], e.Timestamp);
            BinaryPrimitives.WriteInt32BigEndian(span[34..], e.CoordinatorEpoch);
            BinaryPrimitives.WriteInt64BigEndian(span[38..], e.TxnFirst);
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(2), Crc32C.Compute(bytes.AsSpan(6)));
        Directory.CreateDirectory(_root);
        var path = Path.Combine(_root, "00000000000000000031.snapshot");
        File.WriteAllBytes(path, bytes);

        var table = new ProducerStateTable();
        Assert.True(table.LoadSnapshot(path));
        Assert.Equal(28, table.FirstUnstableOffset);
        Assert.Equal(
            [(1L, (short)0, 9, -1L, -1), (2L, (short)3, 0, 28L, 7), (3L, (short)1, -1, -1L, 8)],
            table.Snapshot().OrderBy(p => p.ProducerId).Select(p => (p.ProducerId, p.Epoch, p.LastSequence, p.CurrentTxnStartOffset, p.CoordinatorEpoch)));

        var again = Path.Combine(_root, "again.snapshot");
        table.WriteSnapshot(again);
        Assert.Equal(bytes, File.ReadAllBytes(again));

        // A flipped bit: refused whole.
        bytes[^1] ^= 1;
        File.WriteAllBytes(path, bytes);
        var fresh = new ProducerStateTable();
        Assert.False(fresh.LoadSnapshot(path));
        Assert.Empty(fresh.Snapshot());
        Assert.Equal(long.MaxValue, fresh.FirstUnstableOffset);
    }
}
