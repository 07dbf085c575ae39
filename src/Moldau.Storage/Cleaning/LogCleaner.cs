using Microsoft.Win32.SafeHandles;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Cleaning;

/// <summary>One closed segment as the cleaner reads it: its own open handle and its size.</summary>
/// <param name="Handle">A read handle the cleaner opened (so a retirement rename does not matter).</param>
/// <param name="Size">Bytes of whole batches.</param>
internal readonly record struct SegmentSource(SafeFileHandle Handle, long Size);

/// <summary>What cleaning one segment did.</summary>
/// <param name="Changed">False when every batch was kept as it was (no file is left behind).</param>
/// <param name="BytesAfter">The cleaned segment's size.</param>
/// <param name="RecordsRemoved">Records dropped.</param>
/// <param name="EarliestDeleteHorizon">The earliest delete horizon of a kept batch holding tombstones, or long.MaxValue.</param>
internal readonly record struct SegmentOutcome(bool Changed, long BytesAfter, long RecordsRemoved, long EarliestDeleteHorizon);

/// <summary>
/// Kafka's log cleaner, one pass: an offset map of the latest record of each key over the closed
/// segments, then each closed segment copied without the records a later one supersedes.
/// </summary>
/// <remarks>
/// Kept, as Kafka keeps them: the latest record of each key; tombstones (null values) until
/// their batch's delete horizon (set to now + delete.retention.ms by the first pass that keeps
/// them) has passed; control batches whole; the last batch of every producer id, as a header
/// with no records if nothing else of it survives. Dropped: records without a key (Kafka's
/// cleaner counts them as invalid and drops them too). A batch whose records all survive and
/// needs no delete horizon is copied byte for byte.
/// </remarks>
internal static class LogCleaner
{
    /// <summary>The latest offset of each key over <paramref name="segments"/>, noting each producer's last batch on the way.</summary>
    public static OffsetMap BuildMap(IEnumerable<SegmentSource> segments, Dictionary<long, long> lastBatchOfProducer)
    {
        var map = new OffsetMap();
        foreach (var source in segments)
        {
            var reader = new SegmentBatchReader(source.Handle, source.Size);
            while (reader.TryNext(out var bytes))
            {
                var batch = new RecordBatch(bytes);
                if (batch.ProducerId >= 0)
                {
                    lastBatchOfProducer[batch.ProducerId] = batch.LastOffset;
                }

                if (batch.IsControl || batch.RecordCount == 0)
                {
                    continue;
                }

                if (TryRecords(batch) is not { } records)
                {
                    continue; // unreadable: its keys stay out of the map, so nothing older is dropped for them
                }

                foreach (var r in records)
                {
                    if (r.Key is { } key)
                    {
                        map.Put(key.Span, batch.BaseOffset + r.OffsetDelta);
                    }
                }
            }
        }

        return map;
    }

    /// <summary>Notes each producer's last batch in a segment the pass does not clean (headers only).</summary>
    public static void NoteProducers(SegmentSource source, Dictionary<long, long> lastBatchOfProducer)
    {
        var header = new byte[RecordBatch.HeaderSize];
        for (long position = 0; position + RecordBatch.HeaderSize <= source.Size;)
        {
            if (RandomAccess.Read(source.Handle, header, position) < header.Length)
            {
                return;
            }

            var batch = new RecordBatchHeader(header);
            if (batch.ProducerId >= 0)
            {
                lastBatchOfProducer[batch.ProducerId] = batch.LastOffset;
            }

            position += RecordBatch.DeclaredSize(header);
        }
    }

    /// <summary>
    /// Copies what survives of one segment to <paramref name="cleanedPath"/> and fsyncs it; the
    /// file is removed again when nothing changed.
    /// </summary>
    public static SegmentOutcome CleanSegment(SegmentSource source, string cleanedPath, OffsetMap map, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs)
    {
        try
        {
            return Copy(source, cleanedPath, map, lastBatchOfProducer, now, deleteRetentionMs);
        }
        catch
        {
            File.Delete(cleanedPath);
            throw;
        }
    }

    private static SegmentOutcome Copy(SegmentSource source, string cleanedPath, OffsetMap map, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs)
    {
        var changed = false;
        long removed = 0;
        var horizon = long.MaxValue;
        long written;
        using (var output = new FileStream(cleanedPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
        {
            var reader = new SegmentBatchReader(source.Handle, source.Size);
            while (reader.TryNext(out var bytes))
            {
                var batch = new RecordBatch(bytes);
                var (kept, rewritten, dropped, batchHorizon) = Filter(batch, map, lastBatchOfProducer, now, deleteRetentionMs);
                removed += dropped;
                horizon = Math.Min(horizon, batchHorizon);
                if (rewritten is not null)
                {
                    output.Write(rewritten);
                    changed = true;
                }
                else if (kept)
                {
                    output.Write(bytes.Span);
                }
                else
                {
                    changed = true;
                }
            }

            output.Flush(flushToDisk: true);
            written = output.Length;
        }

        if (!changed)
        {
            File.Delete(cleanedPath);
        }

        return new SegmentOutcome(changed, changed ? written : source.Size, removed, horizon);
    }

    /// <summary>
    /// Decides one batch: kept as it is, rewritten (the bytes to write), or dropped; how many
    /// records went; and its delete horizon when it keeps tombstones (else long.MaxValue).
    /// </summary>
    internal static (bool Kept, byte[]? Rewritten, int Dropped, long Horizon) Filter(
        RecordBatch batch, OffsetMap map, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs)
    {
        if (batch.IsControl)
        {
            return (true, null, 0, long.MaxValue);
        }

        long? horizon = batch.HasDeleteHorizon ? batch.BaseTimestamp : null;
        if (TryRecords(batch) is not { } records)
        {
            return (true, null, 0, long.MaxValue); // unreadable (corrupt, or inflating past the limit): kept as it is
        }

        var retained = new List<RawRecord>(records.Count);
        var tombstones = false;
        foreach (var r in records)
        {
            var keep = r.Key is { } key
                && batch.BaseOffset + r.OffsetDelta >= map.Get(key.Span)
                && (!r.IsTombstone || horizon is null || now < horizon);
            if (keep)
            {
                retained.Add(r);
                tombstones |= r.IsTombstone;
            }
        }

        var dropped = records.Count - retained.Count;
        if (retained.Count > 0)
        {
            if (tombstones && horizon is null)
            {
                // The first pass that keeps a tombstone starts its delete.retention.ms.
                horizon = now > long.MaxValue - deleteRetentionMs ? long.MaxValue : now + deleteRetentionMs;
            }
            else if (dropped == 0)
            {
                return (true, null, 0, tombstones ? horizon!.Value : long.MaxValue);
            }

            return (true, RetainedBatch.Build(batch, retained, horizon ?? -1), dropped, tombstones ? horizon!.Value : long.MaxValue);
        }

        if (batch.ProducerId >= 0 && lastBatchOfProducer.TryGetValue(batch.ProducerId, out var last) && last == batch.LastOffset)
        {
            // Emptied, but the producer's last batch: its header keeps the producer's state.
            return batch.RecordCount == 0 ? (true, null, 0, long.MaxValue) : (true, RetainedBatch.EmptyHeader(batch), dropped, long.MaxValue);
        }

        return (false, null, dropped, long.MaxValue);
    }

    /// <summary>A batch's records, decompressed within <see cref="RecordCompression.MaxDecompressedBytes"/>; null when they cannot be read.</summary>
    private static List<RawRecord>? TryRecords(RecordBatch batch)
    {
        try
        {
            var section = batch.Compression == CompressionType.None
                ? batch.RecordsSection
                : RecordCompression.Decompress(batch.Compression, batch.RecordsSection);
            return RawRecord.Parse(section, batch.RecordCount, batch.BaseTimestamp);
        }
        catch (KafkaProtocolException)
        {
            return null;
        }
    }
}
