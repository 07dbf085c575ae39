using Microsoft.Win32.SafeHandles;
using Moldau.Storage.Cleaning;

namespace Moldau.Storage;

/// <summary>Log compaction (cleanup.policy=compact): the PartitionLog side of <see cref="LogCleaner"/>.</summary>
/// <remarks>
/// A pass covers the closed segments below the high watermark (never the active segment). Each
/// segment that changes is written to <c>&lt;base&gt;.log.cleaned</c> and fsynced, renamed to
/// <c>.log.swap</c> (complete, to be swapped in), then, under the append lock, the old segment
/// is retired as retention retires it (renamed to <c>.deleted</c>, kept open for in-flight reads
/// until file.delete.delay.ms) and the swap file is renamed to <c>&lt;base&gt;.log</c> and opened.
/// Opening a log drops <c>.cleaned</c> leftovers and completes <c>.swap</c> ones. Segments are
/// swapped oldest first, so a crash between two swaps never leaves an older value of a key
/// while its tombstone is gone.
/// </remarks>
public sealed partial class PartitionLog
{
    private const string CleanedSuffix = ".cleaned";
    private const string SwapSuffix = ".swap";
    private Lock? _cleanLock; // made by the first pass: only compacted logs are cleaned

    // Closed segments ending at or below this offset were cleaned by the last pass; kept across
    // restarts in the log dir's cleaner-offset-checkpoint (PartitionLogOptions.CleanedUpTo).
    private long _cleanedUpTo;

    /// <summary>The offset up to which the closed segments were cleaned: Kafka's <c>cleaner-offset-checkpoint</c> entry.</summary>
    public long CleanedUpTo => Volatile.Read(ref _cleanedUpTo);

    // The earliest delete horizon of a tombstone kept by the last pass: the log is cleaned again once it passes.
    private long _nextDeleteHorizon = long.MaxValue;

    /// <summary>
    /// The share of the closed segments' bytes not yet covered by a cleaning pass (Kafka's dirty
    /// ratio, with the cleaned point kept in memory); 0 when there is no closed segment.
    /// </summary>
    public double DirtyRatio
    {
        get
        {
            var segments = _segments;
            return DirtyRatioOf(segments, CleanableCount(segments));
        }
    }

    private double DirtyRatioOf(LogSegment[] segments, int closed)
    {
        long clean = 0, dirty = 0;
        for (var i = 0; i < closed; i++)
        {
            if (segments[i + 1].BaseOffset <= Volatile.Read(ref _cleanedUpTo))
            {
                clean += segments[i].Size;
            }
            else
            {
                dirty += segments[i].Size;
            }
        }

        return clean + dirty == 0 ? 0 : (double)dirty / (clean + dirty);
    }

    /// <summary>
    /// Runs a pass when the log is dirty enough (<see cref="CleanerSettings.MinCleanableDirtyRatio"/>)
    /// or a kept tombstone's delete horizon has passed; null when it did not run.
    /// </summary>
    public CleaningResult? CleanIfDirty(CleanerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var segments = _segments;
        var closed = CleanableCount(segments, settings.MinCompactionLagMs);
        var ratio = DirtyRatioOf(segments, closed);
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var horizonPassed = now >= Volatile.Read(ref _nextDeleteHorizon);
        return (ratio > 0 && ratio >= settings.MinCleanableDirtyRatio) || horizonPassed || Overdue(segments, closed, now, settings.MaxCompactionLagMs)
            ? Clean(settings)
            : null;
    }

    /// <summary>
    /// max.compaction.lag.ms: a dirty closed segment whose first batch is older than the lag must be
    /// compacted now, whatever the dirty ratio (Kafka's <c>LogCleanerManager.maxCompactionDelay</c>).
    /// </summary>
    private bool Overdue(LogSegment[] segments, int closed, long now, long maxLagMs)
    {
        if (maxLagMs == long.MaxValue)
        {
            return false;
        }

        var cleanedUpTo = Volatile.Read(ref _cleanedUpTo);
        for (var i = 0; i < closed; i++)
        {
            var first = segments[i].FirstBatchTimestamp;
            if (segments[i + 1].BaseOffset > cleanedUpTo && first >= 0 && now - first > maxLagMs)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Runs one cleaning pass over the closed segments now.</summary>
    public CleaningResult Clean(CleanerSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        lock (LazyInitializer.EnsureInitialized(ref _cleanLock))
        {
            var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
            var segments = _segments;
            var closed = CleanableCount(segments, settings.MinCompactionLagMs);
            if (closed == 0)
            {
                return default;
            }

            var handles = new List<SafeFileHandle>();
            try
            {
                var sources = new List<SegmentSource>();
                var others = new List<SegmentSource>();
                for (var i = 0; i < segments.Length; i++)
                {
                    // The cleaner's own handles: retention may retire (rename) a segment meanwhile.
                    var handle = File.OpenHandle(segments[i].Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
                    handles.Add(handle);
                    (i < closed ? sources : others).Add(new SegmentSource(handle, segments[i].Size));
                }

                // The aborted transactions the pass may meet: every one that starts before its end
                // (its marker may lie in a later segment, even the active one).
                var end = segments[closed].BaseOffset;
                var aborted = segments.SelectMany(s => s.TxnIndex?.Entries ?? []).Where(e => e.FirstOffset < end).OrderBy(e => e.FirstOffset).ToList();
                var lastBatchOfProducer = new Dictionary<long, long>();
                var map = LogCleaner.BuildMap(sources, lastBatchOfProducer, new CleanedTransactions(aborted));
                foreach (var later in others)
                {
                    LogCleaner.NoteProducers(later, lastBatchOfProducer);
                }

                var result = default(CleaningResult);
                var horizon = long.MaxValue;
                var transactions = new CleanedTransactions(aborted);
                for (var i = 0; i < closed; i++)
                {
                    var old = segments[i];
                    var cleaned = old.Path + CleanedSuffix;
                    var outcome = LogCleaner.CleanSegment(sources[i], cleaned, map, lastBatchOfProducer, now, settings.DeleteRetentionMs, transactions);
                    horizon = Math.Min(horizon, outcome.EarliestDeleteHorizon);
                    var swapped = outcome.Changed && SwapIn(old, cleaned, outcome.KeptAborts);
                    result = new CleaningResult(
                        result.SegmentsRewritten + (swapped ? 1 : 0),
                        result.BytesBefore + sources[i].Size,
                        result.BytesAfter + (swapped ? outcome.BytesAfter : sources[i].Size),
                        result.RecordsRemoved + (swapped ? outcome.RecordsRemoved : 0));
                }

                Volatile.Write(ref _cleanedUpTo, segments[closed].BaseOffset);
                Volatile.Write(ref _nextDeleteHorizon, horizon);
                return result;
            }
            catch (FileNotFoundException)
            {
                // Retention retired a segment between the snapshot and the open: the next pass sees the new log.
                return default;
            }
            finally
            {
                foreach (var h in handles)
                {
                    h.Dispose();
                }
            }
        }
    }

    /// <summary>
    /// Replaces <paramref name="old"/> by the cleaned file, and its transaction index by one of
    /// <paramref name="keptAborts"/>; false (and the files removed) when the segment left the log
    /// meanwhile (retention, DeleteRecords).
    /// </summary>
    /// <remarks>
    /// The cleaned <c>.txnindex</c> is written complete first (as <c>.txnindex.cleaned</c>, fsynced,
    /// renamed <c>.txnindex.swap</c>, the directory fsynced) whenever the old segment had one, even
    /// empty, so that opening after a crash can tell: a <c>.txnindex.swap</c> beside a <c>.log.swap</c>
    /// replaces the old index; without one the index in place is already the cleaned one (or there
    /// was none). Then the <c>.log.swap</c> rename commits the swap, as before.
    /// </remarks>
    private bool SwapIn(LogSegment old, string cleaned, List<AbortedTxnEntry> keptAborts)
    {
        var swap = old.Path + SwapSuffix;
        var txnIndex = TransactionIndex.PathOf(old.Path);
        var txnSwap = txnIndex + SwapSuffix;
        if (old.TxnIndex is { FileExists: true } || keptAborts.Count > 0)
        {
            var bytes = new byte[keptAborts.Count * TransactionIndex.EntrySize];
            for (var i = 0; i < keptAborts.Count; i++)
            {
                TransactionIndex.Write(bytes.AsSpan(i * TransactionIndex.EntrySize), keptAborts[i]);
            }

            var txnCleaned = txnIndex + CleanedSuffix;
            using (var file = new FileStream(txnCleaned, FileMode.Create, FileAccess.Write))
            {
                file.Write(bytes);
                file.Flush(flushToDisk: true);
            }

            File.Move(txnCleaned, txnSwap, overwrite: true);
            DirectorySync.Sync(Directory, _runtime.Files);
        }

        File.Move(cleaned, swap, overwrite: true);
        lock (_appendLock)
        {
            var index = Array.IndexOf(_segments, old);
            if (index < 0 || _disposed)
            {
                File.Delete(swap);
                File.Delete(txnSwap);
                return false;
            }

            Retire(old);
            PlaceTxnIndexSwap(txnSwap, txnIndex);
            File.Move(swap, old.Path, overwrite: true);

            // Opening the file rebuilds the segment's index and finds its transaction index; the
            // producer state already holds every batch.
            var (segment, _) = SegmentRecovery.Recover(old.Path, old.BaseOffset, _options.IndexIntervalBytes, new ProducerStateTable(), _runtime, _options.DirectIo, rebuildTxnIndex: false);
            var next = (LogSegment[])_segments.Clone();
            next[index] = segment;
            _segments = next;
            _directoryDirty = true; // the next flush makes the renames durable
            SyncIndexesLater(segment); // and the rebuilt index files
            return true;
        }
    }

    /// <summary>
    /// Closed segments wholly below the last stable offset, counted from the first, up to the first
    /// holding a record younger than min.compaction.lag.ms (Kafka's first uncleanable offset).
    /// </summary>
    private int CleanableCount(LogSegment[] segments, long minCompactionLagMs = 0)
    {
        // Kafka's first uncleanable offset: nothing at or past the first unstable offset (an open
        // transaction, or one whose marker is not yet durable) nor the high watermark.
        var highWatermark = LastStableOffset;
        var youngest = minCompactionLagMs > 0 ? _time.GetUtcNow().ToUnixTimeMilliseconds() - minCompactionLagMs : long.MaxValue;
        var count = 0;
        while (count < segments.Length - 1 && segments[count + 1].BaseOffset <= highWatermark && segments[count].MaxTimestamp <= youngest)
        {
            count++;
        }

        return count;
    }

    /// <summary>
    /// On open: a <c>.cleaned</c> file was never complete and goes; a <c>.swap</c> file was
    /// complete and fsynced before it got that name, so it replaces its segment.
    /// </summary>
    private static void CompleteInterruptedCleaning(string directory)
    {
        foreach (var cleaned in System.IO.Directory.GetFiles(directory, "*.log" + CleanedSuffix).Concat(System.IO.Directory.GetFiles(directory, "*.txnindex" + CleanedSuffix)))
        {
            File.Delete(cleaned);
        }

        foreach (var swap in System.IO.Directory.GetFiles(directory, "*.log" + SwapSuffix))
        {
            // Index files beside the old segment describe the old bytes: they go, and opening the
            // segment builds them again. The transaction index can't be rebuilt from the segment
            // alone: the cleaned one, written before the swap, takes the old one's place.
            var segment = swap[..^SwapSuffix.Length];
            foreach (var index in new[] { ".index", ".timeindex" })
            {
                File.Delete(Path.ChangeExtension(segment, index));
            }

            var txnIndex = TransactionIndex.PathOf(segment);
            PlaceTxnIndexSwap(txnIndex + SwapSuffix, txnIndex);
            File.Move(swap, segment, overwrite: true);
        }

        // A cleaned transaction index whose segment's swap never happened.
        foreach (var orphan in System.IO.Directory.GetFiles(directory, "*.txnindex" + SwapSuffix))
        {
            File.Delete(orphan);
        }
    }

    /// <summary>Puts a cleaned <c>.txnindex.swap</c> in its segment's place (none when it is empty); nothing when there is none.</summary>
    private static void PlaceTxnIndexSwap(string txnSwap, string txnIndex)
    {
        if (!File.Exists(txnSwap))
        {
            return;
        }

        if (new FileInfo(txnSwap).Length == 0)
        {
            File.Delete(txnIndex);
            File.Delete(txnSwap);
        }
        else
        {
            File.Move(txnSwap, txnIndex, overwrite: true);
        }
    }
}
