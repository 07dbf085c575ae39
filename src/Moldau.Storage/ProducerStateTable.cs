using System.Buffers.Binary;
using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>What an append did.</summary>
public enum AppendStatus
{
    /// <summary>The batch was written.</summary>
    Appended,

    /// <summary>The batch repeats one of the producer's last five: not written again.</summary>
    Duplicate,

    /// <summary>The batch's first sequence does not follow the producer's last one.</summary>
    OutOfOrderSequence,

    /// <summary>The batch's producer epoch is older than the producer's current epoch.</summary>
    InvalidProducerEpoch,

    /// <summary>The batch, re-compressed into the topic's compression.type, is larger than max.message.bytes.</summary>
    MessageTooLarge,
}

/// <summary>The outcome of an append and the base offset the batch has (or had, for a duplicate).</summary>
/// <param name="Status">What happened.</param>
/// <param name="BaseOffset">The batch's offset, or -1 when refused.</param>
public readonly record struct AppendResult(AppendStatus Status, long BaseOffset);

/// <summary>
/// Per partition, the state of each idempotent producer: its epoch and its last five batches'
/// sequence ranges and offsets (librdkafka and the Java client keep at most five in flight), so a
/// retried batch is recognised and answered with its original offset.
/// </summary>
internal sealed class ProducerStateTable
{
    private const int Remembered = 5;
    private readonly Dictionary<long, Entry> _producers = [];

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
        if (!_producers.TryGetValue(pid, out var e))
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
                return new(AppendStatus.Duplicate, b.BaseOffset);
            }
        }

        var expected = e.Batches.Count == 0 ? 0 : Next(e.Batches.Last().LastSeq);
        return first == expected ? new(AppendStatus.Appended, -1) : new(AppendStatus.OutOfOrderSequence, -1);
    }

    /// <summary>Records a written batch (also used while recovering a log).</summary>
    public void Update(ReadOnlySpan<byte> batch)
    {
        var (pid, epoch, first, last) = Identify(batch);
        if (!_producers.TryGetValue(pid, out var e))
        {
            _producers[pid] = e = new Entry(epoch);
        }

        if (epoch != e.Epoch)
        {
            e.Epoch = epoch;
            e.Batches.Clear();
        }

        e.LastTimestamp = BinaryPrimitives.ReadInt64BigEndian(batch[35..]);
        e.Batches.Enqueue((first, last, BinaryPrimitives.ReadInt64BigEndian(batch)));
        while (e.Batches.Count > Remembered)
        {
            e.Batches.Dequeue();
        }
    }

    /// <summary>Each producer's id, epoch and last sequence.</summary>
    public List<(long ProducerId, short Epoch, int LastSequence)> Snapshot() =>
        _producers.Select(p => (p.Key, p.Value.Epoch, p.Value.Batches.Count == 0 ? -1 : p.Value.Batches.Last().LastSeq)).ToList();

    /// <summary>The snapshot file name Kafka uses for a snapshot taken at <paramref name="offset"/>.</summary>
    public static string SnapshotFileName(long offset) =>
        offset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".snapshot";

    /// <summary>
    /// Writes Kafka's producer-state snapshot (version 1): int16 version, uint32 CRC32C of what
    /// follows, then an int32-counted array of entries (producer id, epoch, last sequence, last
    /// offset, offset delta, timestamp, coordinator epoch, first offset of an open transaction),
    /// one per producer for its last batch. Written to a temporary file, fsynced, renamed.
    /// </summary>
    public void WriteSnapshot(string path)
    {
        const int entrySize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;
        var entries = _producers.Where(p => p.Value.Batches.Count > 0).ToList();
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
            f.Flush(flushToDisk: true);
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

            _producers[pid] = e;
        }

        return true;
    }

    /// <summary>True for batches that carry idempotence state.</summary>
    public static bool Tracks(ReadOnlySpan<byte> batch) =>
        batch.Length >= RecordBatch.HeaderSize
        && BinaryPrimitives.ReadInt64BigEndian(batch[43..]) >= 0
        && (BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatch.AttributesOffset..]) & 0x20) == 0
        && BinaryPrimitives.ReadInt32BigEndian(batch[53..]) >= 0;

    private static (long Pid, short Epoch, int First, int Last) Identify(ReadOnlySpan<byte> batch)
    {
        var first = BinaryPrimitives.ReadInt32BigEndian(batch[53..]);
        var delta = BinaryPrimitives.ReadInt32BigEndian(batch[23..]);
        var last = (int)(((long)first + delta) % ((long)int.MaxValue + 1));
        return (BinaryPrimitives.ReadInt64BigEndian(batch[43..]), BinaryPrimitives.ReadInt16BigEndian(batch[51..]), first, last);
    }

    private static int Next(int sequence) => sequence == int.MaxValue ? 0 : sequence + 1;
}
