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
/// <param name="EarliestDeleteHorizon">The earliest delete horizon of a kept batch holding tombstones or a marker that may go, or long.MaxValue.</param>
/// <param name="KeptAborts">The transaction index entries of the ABORT markers the cleaned segment keeps.</param>
internal readonly record struct SegmentOutcome(bool Changed, long BytesAfter, long RecordsRemoved, long EarliestDeleteHorizon, List<AbortedTxnEntry> KeptAborts);

/// <summary>
/// Kafka's log cleaner, one pass: an offset map of the latest record of each key over the closed
/// segments, then each closed segment copied without the records a later one supersedes.
/// </summary>
/// <remarks>
/// Kept, as Kafka keeps them: the latest record of each key; tombstones (null values) until
/// their batch's delete horizon (set to now + delete.retention.ms by the first pass that keeps
/// them) has passed; the last batch of every producer id, as a header with no records if nothing
/// else of it survives. Transactions as Kafka's cleaner treats them (<see cref="CleanedTransactions"/>):
/// the records of aborted transactions are removed and never enter the offset map (an aborted
/// value does not supersede a committed one); a marker stays while a batch of its transaction is
/// left, then until its own delete horizon. Dropped: records without a key (Kafka's cleaner counts
/// them as invalid and drops them too). A batch whose records all survive and needs no delete
/// horizon is copied byte for byte.
/// </remarks>
internal static class LogCleaner
{
    /// <summary>The latest offset of each key over <paramref name="segments"/>, noting each producer's last batch on the way.</summary>
    public static OffsetMap BuildMap(IEnumerable<SegmentSource> segments, Dictionary<long, long> lastBatchOfProducer, CleanedTransactions transactions)
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

                if (batch.IsControl)
                {
                    transactions.OnMarker(batch);
                    continue;
                }

                // An aborted transaction's records supersede nothing: they are not in the map.
                if (transactions.OnBatch(batch) || batch.RecordCount == 0)
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
    public static SegmentOutcome CleanSegment(SegmentSource source, string cleanedPath, OffsetMap map, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs, CleanedTransactions transactions)
    {
        try
        {
            return Copy(source, cleanedPath, map, lastBatchOfProducer, now, deleteRetentionMs, transactions);
        }
        catch
        {
            File.Delete(cleanedPath);
            throw;
        }
    }

    private static SegmentOutcome Copy(SegmentSource source, string cleanedPath, OffsetMap map, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs, CleanedTransactions transactions)
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
                var (kept, rewritten, dropped, batchHorizon) = Filter(batch, map, lastBatchOfProducer, now, deleteRetentionMs, transactions);
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

        return new SegmentOutcome(changed, changed ? written : source.Size, removed, horizon, transactions.TakeKept());
    }

    /// <summary>
    /// Decides one batch: kept as it is, rewritten (the bytes to write), or dropped; how many
    /// records went; and its delete horizon when it keeps tombstones (else long.MaxValue).
    /// </summary>
    internal static (bool Kept, byte[]? Rewritten, int Dropped, long Horizon) Filter(
        RecordBatch batch, OffsetMap map, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs, CleanedTransactions? transactions = null)
    {
        transactions ??= new CleanedTransactions([]);
        if (batch.IsControl)
        {
            return FilterMarker(batch, lastBatchOfProducer, now, deleteRetentionMs, transactions.OnMarker(batch));
        }

        if (transactions.OnBatch(batch))
        {
            // An aborted transaction's batch: its records go; a producer's last batch stays as a header.
            return Emptied(batch, lastBatchOfProducer, batch.RecordCount);
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

        return Emptied(batch, lastBatchOfProducer, dropped);
    }

    /// <summary>A batch none of whose records stay: dropped, unless it is its producer's last, which keeps its header.</summary>
    private static (bool Kept, byte[]? Rewritten, int Dropped, long Horizon) Emptied(RecordBatch batch, IReadOnlyDictionary<long, long> lastBatchOfProducer, int dropped)
    {
        if (batch.ProducerId >= 0 && lastBatchOfProducer.TryGetValue(batch.ProducerId, out var last) && last == batch.LastOffset)
        {
            // Emptied, but the producer's last batch: its header keeps the producer's state.
            return batch.RecordCount == 0 ? (true, null, 0, long.MaxValue) : (true, RetainedBatch.EmptyHeader(batch), dropped, long.MaxValue);
        }

        return (false, null, dropped, long.MaxValue);
    }

    /// <summary>
    /// A marker: kept while its transaction has batches left (<paramref name="mayGo"/> false); once
    /// it may go, the first pass gives its batch a delete horizon (now + delete.retention.ms) and a
    /// pass after the horizon removes it, as Kafka piggy-backs markers on tombstone retention.
    /// </summary>
    private static (bool Kept, byte[]? Rewritten, int Dropped, long Horizon) FilterMarker(RecordBatch batch, IReadOnlyDictionary<long, long> lastBatchOfProducer, long now, long deleteRetentionMs, bool mayGo)
    {
        if (!mayGo)
        {
            return (true, null, 0, long.MaxValue);
        }

        if (batch.RecordCount == 0 || (batch.HasDeleteHorizon && now >= batch.BaseTimestamp))
        {
            return Emptied(batch, lastBatchOfProducer, batch.RecordCount);
        }

        if (batch.HasDeleteHorizon)
        {
            return (true, null, 0, batch.BaseTimestamp);
        }

        if (TryRecords(batch) is not { Count: > 0 } records)
        {
            return (true, null, 0, long.MaxValue); // unreadable: kept as it is
        }

        var horizon = now > long.MaxValue - deleteRetentionMs ? long.MaxValue : now + deleteRetentionMs;
        return (true, RetainedBatch.Build(batch, records, horizon), 0, horizon);
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
