using System.Buffers.Binary;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// A transaction that a marker ended, as the log reports it to its transaction index: Kafka's
/// <c>CompletedTxn</c> with the last stable offset Kafka writes beside it in an <c>AbortedTxn</c>.
/// </summary>
/// <param name="ProducerId">The producer.</param>
/// <param name="FirstOffset">The transaction's first offset in this partition.</param>
/// <param name="LastOffset">The marker's offset.</param>
/// <param name="IsAbort">Whether the marker is an ABORT.</param>
/// <param name="LastStableOffset">
/// The first offset of the oldest transaction of another producer still open, or the offset after
/// the marker (Kafka's <c>ProducerStateManager.lastStableOffset(CompletedTxn)</c>, high watermark aside).
/// </param>
internal readonly record struct CompletedTxn(long ProducerId, long FirstOffset, long LastOffset, bool IsAbort, long LastStableOffset);

/// <summary>
/// Per partition, the state of each idempotent or transactional producer: its epoch and its last
/// five batches' sequence ranges and offsets (librdkafka and the Java client keep at most five in
/// flight), so a retried batch is recognised and answered with its original offset; the first
/// offset of its open transaction and the coordinator epoch of its last marker (Kafka's
/// <c>ProducerStateEntry</c>); and over all producers the open transactions and those whose marker
/// is not yet below the high watermark, which make the first unstable offset.
/// </summary>
/// <remarks>
/// The producers are changed and read under the log's append lock. The transactions (made by the
/// first transactional batch: a partition without any never has them) have a lock of their own,
/// as the high watermark moves on the flusher's thread; <see cref="FirstUnstableOffset"/> is read
/// without a lock.
/// </remarks>
internal sealed class ProducerStateTable
{
    private const int Remembered = 5;
    private const int SnapshotEntrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
    private static readonly Dictionary<long, Entry> NoProducers = [];

    // Made by the first idempotent batch: most partitions never see one (an empty dictionary is 80 B).
    // Only ever read through Producers when it may still be missing; NoProducers is never written.
    private Dictionary<long, Entry>? _producers;

    // Made by the first transactional batch or marker.
    private Transactions? _transactions;
    private long _firstUnstable = long.MaxValue;

    private Dictionary<long, Entry> Producers => _producers ?? NoProducers;

    private sealed class Entry(short epoch)
    {
        public short Epoch { get; set; } = epoch;

        public long LastTimestamp { get; set; } = -1;

        public int CoordinatorEpoch { get; set; } = -1;

        /// <summary>The first offset of the producer's open transaction here, or -1.</summary>
        public long CurrentTxnFirstOffset { get; set; } = -1;

        public Queue<(int FirstSeq, int LastSeq, long BaseOffset)> Batches { get; } = new();

        /// <summary>The newest of <see cref="Batches"/> (when there is one): Queue has no allocation-free Last.</summary>
        public (int FirstSeq, int LastSeq, long BaseOffset) Newest { get; private set; }

        /// <summary>Remembers a batch, forgetting the oldest beyond the last five.</summary>
        public void Add((int FirstSeq, int LastSeq, long BaseOffset) batch)
        {
            Batches.Enqueue(batch);
            Newest = batch;
            while (Batches.Count > Remembered)
            {
                Batches.Dequeue();
            }
        }

        /// <summary>A new epoch forgets the old epoch's batches (Kafka's <c>maybeUpdateProducerEpoch</c>).</summary>
        public void TakeEpoch(short epoch)
        {
            if (epoch != Epoch)
            {
                Epoch = epoch;
                Batches.Clear();
            }
        }
    }

    /// <summary>The open transactions by first offset, and the ended ones whose marker is at or past the high watermark.</summary>
    private sealed class Transactions
    {
        public SortedSet<(long First, long ProducerId)> Open { get; } = [];

        public List<(long First, long Last)> Unreplicated { get; } = [];
    }

    /// <summary>
    /// The first offset of a transaction still open, or ended by a marker not yet below the high
    /// watermark (Kafka's <c>firstUnstableOffset</c>); long.MaxValue when there is none.
    /// </summary>
    public long FirstUnstableOffset => Volatile.Read(ref _firstUnstable);

    /// <summary>Whether any producer has an open transaction.</summary>
    public bool HasOpenTransactions
    {
        get
        {
            if (_transactions is not { } txns)
            {
                return false;
            }

            lock (txns)
            {
                return txns.Open.Count > 0;
            }
        }
    }

    /// <summary>Checks a batch against the producer's state, before it is written.</summary>
    public AppendResult Check(ReadOnlySpan<byte> batch)
    {
        var header = new RecordBatchHeader(batch);
        if (header.IsControl)
        {
            return CheckMarker(batch);
        }

        var (pid, epoch, first, last) = Identify(batch);
        var found = Producers.TryGetValue(pid, out var e);
        if (first < 0)
        {
            // A transactional batch without sequences (a coordinator's own write, Kafka's
            // AppendOrigin.COORDINATOR): only its epoch is checked.
            return found && epoch < e!.Epoch ? new(AppendStatus.InvalidProducerEpoch, -1) : new(AppendStatus.Appended, -1);
        }

        if (!found)
        {
            return first == 0 ? new(AppendStatus.Appended, -1) : new(AppendStatus.OutOfOrderSequence, -1);
        }

        if (epoch < e!.Epoch)
        {
            return new(AppendStatus.InvalidProducerEpoch, -1);
        }

        if (epoch > e.Epoch)
        {
            return first != 0 ? new(AppendStatus.OutOfOrderSequence, -1) : TxnStateCheck(e, header);
        }

        foreach (var b in e.Batches)
        {
            if (b.FirstSeq == first && b.LastSeq == last)
            {
                return new(AppendStatus.Duplicate, b.BaseOffset) { LastOffset = b.BaseOffset + Distance(b.FirstSeq, b.LastSeq) };
            }
        }

        var expected = e.Batches.Count == 0 ? 0 : Next(e.Newest.LastSeq);
        return first == expected ? TxnStateCheck(e, header) : new(AppendStatus.OutOfOrderSequence, -1);
    }

    // Kafka's appendDataBatch: a producer with an open transaction writes transactionally until its marker.
    private static AppendResult TxnStateCheck(Entry e, RecordBatchHeader header) =>
        e.CurrentTxnFirstOffset >= 0 && !header.IsTransactional ? new(AppendStatus.InvalidTxnState, -1) : new(AppendStatus.Appended, -1);

    /// <summary>
    /// A marker, as Kafka's <c>appendEndTxnMarker</c> checks it: an older producer epoch is fenced,
    /// a coordinator epoch older than the producer's last marker's is a zombie coordinator's.
    /// </summary>
    private AppendResult CheckMarker(ReadOnlySpan<byte> batch)
    {
        var header = new RecordBatchHeader(batch);
        if (!TryReadMarker(batch, out _, out var coordinatorEpoch) || !Producers.TryGetValue(header.ProducerId, out var e))
        {
            return new(AppendStatus.Appended, -1);
        }

        if (header.ProducerEpoch < e.Epoch)
        {
            return new(AppendStatus.InvalidProducerEpoch, -1);
        }

        return coordinatorEpoch < e.CoordinatorEpoch ? new(AppendStatus.TransactionCoordinatorFenced, -1) : new(AppendStatus.Appended, -1);
    }

    /// <summary>
    /// Records a written batch (also used while recovering a log): the whole batch for a marker, the
    /// header is enough for the rest. Returns the transaction a marker ended, if one was open.
    /// </summary>
    public CompletedTxn? Update(ReadOnlySpan<byte> batch)
    {
        var header = new RecordBatchHeader(batch);
        if (header.IsControl)
        {
            return UpdateMarker(batch);
        }

        var (pid, epoch, first, last) = Identify(batch);
        _producers ??= [];
        if (!_producers.TryGetValue(pid, out var e))
        {
            _producers[pid] = e = new Entry(epoch);
        }

        e.TakeEpoch(epoch);
        e.LastTimestamp = header.MaxTimestamp;
        if (first >= 0)
        {
            e.Add((first, last, header.BaseOffset));
        }

        if (header.IsTransactional && e.CurrentTxnFirstOffset < 0)
        {
            e.CurrentTxnFirstOffset = header.BaseOffset;
            var txns = Txns();
            lock (txns)
            {
                txns.Open.Add((header.BaseOffset, pid));
                Recompute(txns);
            }
        }

        return null;
    }

    private CompletedTxn? UpdateMarker(ReadOnlySpan<byte> batch)
    {
        // An empty control batch: the cleaner removed the whole transaction (Kafka ignores it too).
        if (!TryReadMarker(batch, out var type, out var coordinatorEpoch))
        {
            return null;
        }

        var header = new RecordBatchHeader(batch);
        var pid = header.ProducerId;
        _producers ??= [];
        if (!_producers.TryGetValue(pid, out var e))
        {
            _producers[pid] = e = new Entry(header.ProducerEpoch);
        }

        e.TakeEpoch(header.ProducerEpoch);
        e.CoordinatorEpoch = coordinatorEpoch;
        e.LastTimestamp = header.MaxTimestamp;
        var first = e.CurrentTxnFirstOffset;
        if (first < 0)
        {
            return null; // a marker of an empty transaction: nothing here to end
        }

        e.CurrentTxnFirstOffset = -1;
        var marker = header.BaseOffset;
        var txns = Txns();
        lock (txns)
        {
            // The last stable offset Kafka records with an aborted transaction: where the next
            // undecided transaction of another producer starts, else after the marker.
            var lastStable = marker + 1;
            foreach (var (openFirst, openPid) in txns.Open)
            {
                if (openPid != pid)
                {
                    lastStable = openFirst;
                    break;
                }
            }

            txns.Open.Remove((first, pid));
            txns.Unreplicated.Add((first, marker));
            Recompute(txns);
            return new CompletedTxn(pid, first, marker, type == ControlRecordType.Abort, lastStable);
        }
    }

    /// <summary>
    /// The high watermark reached <paramref name="highWatermark"/>: transactions whose marker lies
    /// below it are decided for good and no longer hold the first unstable offset back.
    /// </summary>
    public void HighWatermarkMoved(long highWatermark)
    {
        if (Volatile.Read(ref _transactions) is not { } txns)
        {
            return;
        }

        // (No lambda: one capturing the parameter would allocate at every call, transactions or not.)
        lock (txns)
        {
            var unreplicated = txns.Unreplicated;
            var removed = false;
            for (var i = unreplicated.Count - 1; i >= 0; i--)
            {
                if (unreplicated[i].Last < highWatermark)
                {
                    unreplicated.RemoveAt(i);
                    removed = true;
                }
            }

            if (removed)
            {
                Recompute(txns);
            }
        }
    }

    private Transactions Txns()
    {
        if (Volatile.Read(ref _transactions) is { } txns)
        {
            return txns;
        }

        var made = new Transactions();
        return Interlocked.CompareExchange(ref _transactions, made, null) ?? made;
    }

    private void Recompute(Transactions txns)
    {
        var first = txns.Open.Count > 0 ? txns.Open.Min.First : long.MaxValue;
        foreach (var (f, _) in txns.Unreplicated)
        {
            first = Math.Min(first, f);
        }

        Volatile.Write(ref _firstUnstable, first);
    }

    /// <summary>Each producer's id, epoch, last sequence, last timestamp, open transaction and coordinator epoch.</summary>
    public List<ActiveProducer> Snapshot() =>
        Producers.Select(p => new ActiveProducer(p.Key, p.Value.Epoch, p.Value.Batches.Count == 0 ? -1 : p.Value.Newest.LastSeq, p.Value.LastTimestamp)
        {
            CurrentTxnStartOffset = p.Value.CurrentTxnFirstOffset,
            CoordinatorEpoch = p.Value.CoordinatorEpoch,
        }).ToList();

    /// <summary>The snapshot file name Kafka uses for a snapshot taken at <paramref name="offset"/>.</summary>
    public static string SnapshotFileName(long offset) =>
        offset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".snapshot";

    /// <summary>
    /// Writes Kafka's producer-state snapshot (version 1), one entry per producer as Kafka's
    /// <c>ProducerStateManager.writeSnapshot</c> does (a producer known only by its epoch too).
    /// Written to a temporary file, fsynced (unless not <paramref name="sync"/>: a clean stop
    /// syncs the file system after), renamed.
    /// </summary>
    /// <remarks>
    /// <code>
    /// version                  int16    1
    /// crc                      uint32   CRC32C of everything after it
    /// entries                  int32    count, then per producer:
    ///   producer_id            int64
    ///   epoch                  int16
    ///   last_sequence          int32    -1 without a batch
    ///   last_offset            int64    the last batch's last offset, -1 without one
    ///   offset_delta           int32    last_offset - the last batch's base offset (0 without one)
    ///   timestamp              int64    the last batch's max timestamp (or the last marker's)
    ///   coordinator_epoch      int32    of the last marker, -1 without one
    ///   current_txn_first_offset int64  the open transaction's first offset, -1 when none is open
    /// </code>
    /// </remarks>
    public void WriteSnapshot(string path, bool sync = true)
    {
        var entries = Producers.ToList();
        var bytes = new byte[6 + 4 + (entries.Count * SnapshotEntrySize)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, 1);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(6), entries.Count);
        var at = 10;
        foreach (var (pid, e) in entries)
        {
            int lastSeq = -1, delta = 0;
            long lastOffset = -1;
            if (e.Batches.Count > 0)
            {
                var (firstSeq, last, baseOffset) = e.Newest;
                lastSeq = last;
                delta = Distance(firstSeq, last);
                lastOffset = baseOffset + delta;
            }

            var span = bytes.AsSpan(at, SnapshotEntrySize);
            BinaryPrimitives.WriteInt64BigEndian(span, pid);
            BinaryPrimitives.WriteInt16BigEndian(span[8..], e.Epoch);
            BinaryPrimitives.WriteInt32BigEndian(span[10..], lastSeq);
            BinaryPrimitives.WriteInt64BigEndian(span[14..], lastOffset);
            BinaryPrimitives.WriteInt32BigEndian(span[22..], delta);
            BinaryPrimitives.WriteInt64BigEndian(span[26..], e.LastTimestamp);
            BinaryPrimitives.WriteInt32BigEndian(span[34..], e.CoordinatorEpoch);
            BinaryPrimitives.WriteInt64BigEndian(span[38..], e.CurrentTxnFirstOffset);
            at += SnapshotEntrySize;
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(2), Crc32C.Compute(bytes.AsSpan(6)));
        var tmp = path + ".tmp";
        using (var f = new FileStream(tmp, FileMode.Create, FileAccess.Write))
        {
            f.Write(bytes);
            f.Flush(flushToDisk: sync);
        }

        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// Loads a snapshot written by Kafka or by <see cref="WriteSnapshot"/>, open transactions
    /// included; false (and no change) when it is corrupt.
    /// </summary>
    public bool LoadSnapshot(string path)
    {
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || BinaryPrimitives.ReadInt16BigEndian(bytes) != 1
            || Crc32C.Compute(bytes.AsSpan(6)) != BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(2)))
        {
            return false;
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(6));
        if (count < 0 || 10 + ((long)count * SnapshotEntrySize) != bytes.Length)
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            var span = bytes.AsSpan(10 + (i * SnapshotEntrySize), SnapshotEntrySize);
            var pid = BinaryPrimitives.ReadInt64BigEndian(span);
            var lastSeq = BinaryPrimitives.ReadInt32BigEndian(span[10..]);
            var lastOffset = BinaryPrimitives.ReadInt64BigEndian(span[14..]);
            var delta = BinaryPrimitives.ReadInt32BigEndian(span[22..]);
            var e = new Entry(BinaryPrimitives.ReadInt16BigEndian(span[8..]))
            {
                LastTimestamp = BinaryPrimitives.ReadInt64BigEndian(span[26..]),
                CoordinatorEpoch = BinaryPrimitives.ReadInt32BigEndian(span[34..]),
                CurrentTxnFirstOffset = Math.Max(-1, BinaryPrimitives.ReadInt64BigEndian(span[38..])),
            };
            if (lastSeq >= 0 && lastOffset >= 0)
            {
                var firstSeq = (int)(((long)lastSeq - delta + int.MaxValue + 1) % ((long)int.MaxValue + 1));
                e.Add((firstSeq, lastSeq, lastOffset - delta));
            }

            (_producers ??= [])[pid] = e;
            if (e.CurrentTxnFirstOffset >= 0)
            {
                var txns = Txns();
                lock (txns)
                {
                    txns.Open.Add((e.CurrentTxnFirstOffset, pid));
                    Recompute(txns);
                }
            }
        }

        return true;
    }

    /// <summary>
    /// True for batches that carry producer state: an idempotent producer's (sequences), a
    /// transactional one's, and transaction markers. A plain batch (producer id -1) is never.
    /// </summary>
    public static bool Tracks(ReadOnlySpan<byte> batch)
    {
        if (batch.Length < RecordBatch.HeaderSize)
        {
            return false;
        }

        var header = new RecordBatchHeader(batch);
        return header.ProducerId >= 0 && (header.BaseSequence >= 0 || header.IsTransactional);
    }

    /// <summary>
    /// The type and coordinator epoch of a marker batch's one control record (uncompressed, as
    /// Kafka writes markers); false for a control batch without a record Kafka knows.
    /// </summary>
    /// <remarks>
    /// The record (see <see cref="Record"/>): length varint, attributes int8, timestamp delta
    /// varlong, offset delta varint, key length varint, key (version int16, type int16), value
    /// length varint, value (version int16, coordinator epoch int32), header count varint.
    /// </remarks>
    public static bool TryReadMarker(ReadOnlySpan<byte> batch, out ControlRecordType type, out int coordinatorEpoch)
    {
        type = default;
        coordinatorEpoch = -1;
        var header = new RecordBatchHeader(batch);
        if (batch.Length <= RecordBatch.HeaderSize || header.RecordCount < 1 || header.Compression != CompressionType.None)
        {
            return false;
        }

        var r = batch[RecordBatch.HeaderSize..];
        if (!Skip(ref r) || r.Length < 1)
        {
            return false; // the length
        }

        r = r[1..]; // attributes
        if (!Skip(ref r) || !Skip(ref r) || !TryVarInt(ref r, out var keyLength) || keyLength < 0 || keyLength > r.Length)
        {
            return false;
        }

        if (ControlRecordBatch.TypeOf(r[..keyLength]) is not { } found)
        {
            return false;
        }

        r = r[keyLength..];
        if (!TryVarInt(ref r, out var valueLength) || valueLength > r.Length)
        {
            return false;
        }

        type = found;
        coordinatorEpoch = valueLength < 0 ? -1 : ControlRecordBatch.CoordinatorEpochOf(r[..valueLength]);
        return true;
    }

    private static bool Skip(ref ReadOnlySpan<byte> bytes) => TryVarInt(ref bytes, out _);

    // A zig-zag varint (a varlong for the timestamp delta reads the same way, up to 10 bytes).
    private static bool TryVarInt(ref ReadOnlySpan<byte> bytes, out int value)
    {
        ulong raw = 0;
        for (var i = 0; i < 10 && i < bytes.Length; i++)
        {
            raw |= (ulong)(bytes[i] & 0x7F) << (7 * i);
            if ((bytes[i] & 0x80) == 0)
            {
                bytes = bytes[(i + 1)..];
                var decoded = (long)(raw >> 1) ^ -(long)(raw & 1);
                value = decoded is >= int.MinValue and <= int.MaxValue ? (int)decoded : -1;
                return true;
            }
        }

        value = 0;
        return false;
    }

    private static (long Pid, short Epoch, int First, int Last) Identify(ReadOnlySpan<byte> batch)
    {
        var header = new RecordBatchHeader(batch);
        var first = header.BaseSequence;
        var last = first < 0 ? -1 : (int)(((long)first + header.LastOffsetDelta) % ((long)int.MaxValue + 1));
        return (header.ProducerId, header.ProducerEpoch, first, last);
    }

    private static int Next(int sequence) => sequence == int.MaxValue ? 0 : sequence + 1;

    /// <summary>How many sequences after <paramref name="first"/> <paramref name="last"/> is (sequences wrap at int.MaxValue).</summary>
    private static int Distance(int first, int last) => last >= first ? last - first : (int)(last + ((long)int.MaxValue + 1) - first);
}
