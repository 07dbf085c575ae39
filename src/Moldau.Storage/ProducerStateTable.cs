using System.Buffers.Binary;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// Per partition, the state of each idempotent producer: its epoch and its last five batches'
/// sequence ranges and offsets (librdkafka and the Java client keep at most five in flight), so a
/// retried batch is recognised and answered with its original offset.
/// </summary>
internal sealed class ProducerStateTable
{
    private const int Remembered = 5;
    private static readonly Dictionary<long, Entry> NoProducers = [];

    // Made by the first idempotent batch: most partitions never see one (an empty dictionary is 80 B).
    // Only ever read through Producers when it may still be missing; NoProducers is never written.
    private Dictionary<long, Entry>? _producers;

    private Dictionary<long, Entry> Producers => _producers ?? NoProducers;

    private sealed class Entry(short epoch)
    {
        public short Epoch { get; set; } = epoch;

        public long LastTimestamp { get; set; } = -1;

        public Queue<(int FirstSeq, int LastSeq, long BaseOffset)> Batches { get; } = new();
    }

    /// <summary>Checks a batch against the producer's state, before it is written.</summary>
    public AppendResult Check(ReadOnlySpan<byte> batch)
    {
        var (pid, epoch, first, last) = Identify(batch);
        if (!Producers.TryGetValue(pid, out var e))
        {
            return first == 0 ? new(AppendStatus.Appended, -1) : new(AppendStatus.OutOfOrderSequence, -1);
        }

        if (epoch < e.Epoch)
        {
            return new(AppendStatus.InvalidProducerEpoch, -1);
        }

        if (epoch > e.Epoch)
        {
            return first == 0 ? new(AppendStatus.Appended, -1) : new(AppendStatus.OutOfOrderSequence, -1);
        }

        foreach (var b in e.Batches)
        {
            if (b.FirstSeq == first && b.LastSeq == last)
            {
                return new(AppendStatus.Duplicate, b.BaseOffset) { LastOffset = b.BaseOffset + Distance(b.FirstSeq, b.LastSeq) };
            }
        }

        var expected = e.Batches.Count == 0 ? 0 : Next(e.Batches.Last().LastSeq);
        return first == expected ? new(AppendStatus.Appended, -1) : new(AppendStatus.OutOfOrderSequence, -1);
    }

    /// <summary>Records a written batch (also used while recovering a log).</summary>
    public void Update(ReadOnlySpan<byte> batch)
    {
        var (pid, epoch, first, last) = Identify(batch);
        _producers ??= [];
        if (!_producers.TryGetValue(pid, out var e))
        {
            _producers[pid] = e = new Entry(epoch);
        }

        if (epoch != e.Epoch)
        {
            e.Epoch = epoch;
            e.Batches.Clear();
        }

        var header = new RecordBatchHeader(batch);
        e.LastTimestamp = header.MaxTimestamp;
        e.Batches.Enqueue((first, last, header.BaseOffset));
        while (e.Batches.Count > Remembered)
        {
            e.Batches.Dequeue();
        }
    }

    /// <summary>Each producer's id, epoch, last sequence and last timestamp.</summary>
    public List<ActiveProducer> Snapshot() =>
        Producers.Select(p => new ActiveProducer(p.Key, p.Value.Epoch, p.Value.Batches.Count == 0 ? -1 : p.Value.Batches.Last().LastSeq, p.Value.LastTimestamp)).ToList();

    /// <summary>The snapshot file name Kafka uses for a snapshot taken at <paramref name="offset"/>.</summary>
    public static string SnapshotFileName(long offset) =>
        offset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".snapshot";

    /// <summary>
    /// Writes Kafka's producer-state snapshot (version 1): int16 version, uint32 CRC32C of what
    /// follows, then an int32-counted array of entries (producer id, epoch, last sequence, last
    /// offset, offset delta, timestamp, coordinator epoch, first offset of an open transaction),
    /// one per producer for its last batch. Written to a temporary file, fsynced (unless not
    /// <paramref name="sync"/>: a clean stop syncs the file system after), renamed.
    /// </summary>
    public void WriteSnapshot(string path, bool sync = true)
    {
        const int entrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
        var entries = Producers.Where(p => p.Value.Batches.Count > 0).ToList();
        var bytes = new byte[6 + 4 + (entries.Count * entrySize)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, 1);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(6), entries.Count);
        var at = 10;
        foreach (var (pid, e) in entries)
        {
            var (firstSeq, lastSeq, baseOffset) = e.Batches.Last();
            var delta = lastSeq >= firstSeq ? lastSeq - firstSeq : (int)(lastSeq + ((long)int.MaxValue + 1) - firstSeq);
            var span = bytes.AsSpan(at, entrySize);
            BinaryPrimitives.WriteInt64BigEndian(span, pid);
            BinaryPrimitives.WriteInt16BigEndian(span[8..], e.Epoch);
            BinaryPrimitives.WriteInt32BigEndian(span[10..], lastSeq);
            BinaryPrimitives.WriteInt64BigEndian(span[14..], baseOffset + delta);
            BinaryPrimitives.WriteInt32BigEndian(span[22..], delta);
            BinaryPrimitives.WriteInt64BigEndian(span[26..], e.LastTimestamp);
            BinaryPrimitives.WriteInt32BigEndian(span[34..], -1);
            BinaryPrimitives.WriteInt64BigEndian(span[38..], -1);
            at += entrySize;
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

    /// <summary>Loads a snapshot written by Kafka or by <see cref="WriteSnapshot"/>; false (and no change) when it is corrupt.</summary>
    public bool LoadSnapshot(string path)
    {
        const int entrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || BinaryPrimitives.ReadInt16BigEndian(bytes) != 1
            || Crc32C.Compute(bytes.AsSpan(6)) != BinaryPrimitives.ReadUInt32BigEndian(bytes.AsSpan(2)))
        {
            return false;
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(6));
        if (count < 0 || 10 + ((long)count * entrySize) != bytes.Length)
        {
            return false;
        }

        for (var i = 0; i < count; i++)
        {
            var span = bytes.AsSpan(10 + (i * entrySize), entrySize);
            var pid = BinaryPrimitives.ReadInt64BigEndian(span);
            var lastSeq = BinaryPrimitives.ReadInt32BigEndian(span[10..]);
            var lastOffset = BinaryPrimitives.ReadInt64BigEndian(span[14..]);
            var delta = BinaryPrimitives.ReadInt32BigEndian(span[22..]);
            var e = new Entry(BinaryPrimitives.ReadInt16BigEndian(span[8..])) { LastTimestamp = BinaryPrimitives.ReadInt64BigEndian(span[26..]) };
            if (lastSeq >= 0)
            {
                var firstSeq = (int)(((long)lastSeq - delta + int.MaxValue + 1) % ((long)int.MaxValue + 1));
                e.Batches.Enqueue((firstSeq, lastSeq, lastOffset - delta));
            }

            (_producers ??= [])[pid] = e;
        }

        return true;
    }

    /// <summary>True for batches that carry idempotence state.</summary>
    public static bool Tracks(ReadOnlySpan<byte> batch)
    {
        if (batch.Length < RecordBatch.HeaderSize)
        {
            return false;
        }

        var header = new RecordBatchHeader(batch);
        return header.ProducerId >= 0 && !header.IsControl && header.BaseSequence >= 0;
    }

    private static (long Pid, short Epoch, int First, int Last) Identify(ReadOnlySpan<byte> batch)
    {
        var header = new RecordBatchHeader(batch);
        var first = header.BaseSequence;
        var last = (int)(((long)first + header.LastOffsetDelta) % ((long)int.MaxValue + 1));
        return (header.ProducerId, header.ProducerEpoch, first, last);
    }

    private static int Next(int sequence) => sequence == int.MaxValue ? 0 : sequence + 1;

    /// <summary>How many sequences after <paramref name="first"/> <paramref name="last"/> is (sequences wrap at int.MaxValue).</summary>
    private static int Distance(int first, int last) => last >= first ? last - first : (int)(last + ((long)int.MaxValue + 1) - first);
}
