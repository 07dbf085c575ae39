using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>
/// Opening a partition log: leftovers of retired segments and interrupted cleaning, the segments
/// trusted after a clean stop or below the recovery point and read through otherwise
/// (<see cref="SegmentRecovery"/>), the producer state, and the log end the files prove.
/// </summary>
public sealed partial class PartitionLog
{
    /// <summary>
    /// Opens (or creates) the log in <paramref name="directory"/>, recovering a torn tail, with a
    /// <see cref="StorageRuntime"/> of its own that closes with it (a tool, a test); a broker opens
    /// its logs with its one runtime instead.
    /// </summary>
    public static PartitionLog Open(string directory, PartitionLogOptions options, TimeProvider time)
    {
        var runtime = StorageRuntime.ForOneLog();
        try
        {
            return Open(directory, options, time, runtime, ownsRuntime: true);
        }
        catch
        {
            runtime.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens (or creates) the log in <paramref name="directory"/>, recovering a torn tail. Its
    /// buffers, flusher and reader threads and file layer are <paramref name="runtime"/>'s, which
    /// must outlive the log.
    /// </summary>
    public static PartitionLog Open(string directory, PartitionLogOptions options, TimeProvider time, StorageRuntime runtime) =>
        Open(directory, options, time, runtime, ownsRuntime: false);

    private static PartitionLog Open(string directory, PartitionLogOptions options, TimeProvider time, StorageRuntime runtime, bool ownsRuntime)
    {
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(runtime);
        ObjectDisposedException.ThrowIf(runtime.IsDisposed, runtime);
        System.IO.Directory.CreateDirectory(directory);

        // Segments retired before a stop were waiting out their delete delay: they go now.
        foreach (var retired in System.IO.Directory.GetFiles(directory, "*" + LogSegment.DeletedSuffix))
        {
            File.Delete(retired);
        }

        // A cleaning pass the process did not finish: completed or dropped (PartitionLog.Cleaning.cs).
        CompleteInterruptedCleaning(directory);

        var files = System.IO.Directory.GetFiles(directory, "*.log")
            .Select(p => (Path: p, Base: long.TryParse(System.IO.Path.GetFileNameWithoutExtension(p), out var b) ? b : -1))
            .Where(f => f.Base >= 0)
            .OrderBy(f => f.Base)
            .ToList();
        var segments = new List<LogSegment>();
        var producers = new ProducerStateTable();
        long truncated = 0;
        var recoveryLeftAHole = false;
        string? corruption = null;
        var loadedSnapshot = -1L;
        var snapshots = SnapshotFiles(directory);
        var proven = ProvenLogEnd(directory, files, snapshots, options.RecoveryPoint);
        if (options.CleanShutdown)
        {
            // The marker promises whole batches; the last segment's tail (the batches after its
            // last index entry) is checked against their CRCs all the same, which costs at most an
            // index interval and a batch. Earlier segments are trusted as Kafka trusts them.
            for (var i = 0; i < files.Count; i++)
            {
                var (path, baseOffset) = files[i];
                var (segment, corruptAt) = SegmentRecovery.Load(path, baseOffset, options.IndexIntervalBytes, runtime, options.DirectIo, verifyTail: i == files.Count - 1);
                segments.Add(segment);
                if (corruptAt >= 0)
                {
                    corruption ??= $"{path} is corrupt at position {corruptAt} although the log was closed cleanly";
                    truncated += Math.Max(1, new FileInfo(path).Length - corruptAt);
                }
            }

            // The producer state: the latest snapshot at or below the log end, then the batches after it.
            var end = segments.Count > 0 ? segments[^1].NextOffset : 0;
            var from = segments.Count > 0 ? segments[0].BaseOffset : 0;
            foreach (var (path, offset) in snapshots.Where(s => s.Offset <= end).OrderByDescending(s => s.Offset))
            {
                if (producers.LoadSnapshot(path))
                {
                    from = offset;
                    loadedSnapshot = offset;
                    break;
                }
            }

            ReplayProducerState(segments, from, producers);
        }
        else
        {
            // Segments that end at or below the recovery point were durable, indexes included,
            // before the stop: they are loaded as they are. The rest are read through.
            var trusted = 0;
            while (trusted + 1 < files.Count && files[trusted + 1].Base <= options.RecoveryPoint)
            {
                segments.Add(SegmentRecovery.Load(files[trusted].Path, files[trusted].Base, options.IndexIntervalBytes, runtime, options.DirectIo));
                trusted++;
            }

            // The producer state (open transactions included) up to the first segment read through:
            // the latest snapshot within the trusted segments, then their batches after it. A
            // snapshot names the log end when it was written and was fsynced with the data below it
            // (a clean stop, or Kafka's at a segment roll); offsets below it never change.
            var from = 0L;
            var trustedEnd = trusted < files.Count ? files[trusted].Base : 0;
            foreach (var (path, offset) in snapshots.Where(s => s.Offset <= trustedEnd).OrderByDescending(s => s.Offset))
            {
                if (producers.LoadSnapshot(path))
                {
                    from = offset;
                    break;
                }
            }

            ReplayProducerState(segments, from, producers);
            foreach (var (path, baseOffset) in files.Skip(trusted))
            {
                if (truncated > 0)
                {
                    // Segments after a torn one can't be trusted to follow on: they go.
                    File.Delete(path);
                    continue;
                }

                var (segment, cut) = SegmentRecovery.Recover(path, baseOffset, options.IndexIntervalBytes, producers, runtime, options.DirectIo);
                segments.Add(segment);
                truncated += cut;
            }

            // An empty last segment whose base lies past the end of the one before it: the file's
            // directory entry reached the disk (a journal commit can do that without our directory
            // fsync) while the tail of the previous segment did not. The offsets between were
            // assigned before the stop and are gone. They are not handed out again (the log end stays
            // at the empty segment's base, a hole readers step over); the loss counts as a cut, so
            // the partition gets a new leader epoch. (A compacted log can leave the same shape
            // legitimately; a needless epoch bump only makes clients check their positions.)
            recoveryLeftAHole = segments.Count > 1 && segments[^1].Size == 0 && segments[^2].NextOffset < segments[^1].BaseOffset;
        }

        if (segments.Count == 0)
        {
            segments.Add(LogSegment.Create(directory, options.InitialOffset, options.IndexIntervalBytes, runtime, options.DirectIo));
        }

        // Offsets are never handed out twice: when less is left than the files prove was there
        // (a cut after a clean stop, segments dropped after a torn one), the log goes on from what
        // they prove, past a hole that readers step over.
        if (proven > segments[^1].NextOffset)
        {
            if (segments[^1].Size == 0)
            {
                segments[^1].DisposeAndDelete();
                segments.RemoveAt(segments.Count - 1);
            }

            segments.Add(LogSegment.Create(directory, proven, options.IndexIntervalBytes, runtime, options.DirectIo));
            recoveryLeftAHole = true;
        }

        // Snapshots are only trusted right after a clean stop. The one that is exactly the producer
        // state at the log end (loaded, nothing after it, no corruption) stays, so a close without
        // appends since has nothing to write; the rest go, and the next clean stop writes one at the
        // log end then. After a crash they all go: a crash never leaves a snapshot behind, and
        // (kept or not) a snapshot never names an offset past what the log holds, as it is only
        // written or kept at a log end that is fsynced, and logs are never cut back.
        // (They go only once a segment named past the offsets they prove exists.)
        var keep = options.CleanShutdown && corruption is null && loadedSnapshot == segments[^1].NextOffset ? loadedSnapshot : -1;
        foreach (var (path, offset) in snapshots)
        {
            if (offset != keep)
            {
                File.Delete(path);
            }
        }

        // What survived on disk becomes the high watermark only once it is fsynced: after a kill -9
        // the page cache may still hold writes that were never synced.
        foreach (var s in segments)
        {
            s.Flush();
        }

        DirectorySync.Sync(directory, runtime.Files);
        // Closed segments whose index files were just rebuilt: synced too, so that all of the log
        // is below the recovery point from here on.
        if (!options.CleanShutdown)
        {
            foreach (var s in segments.Take(segments.Count - 1))
            {
                s.FlushIndexes();
            }
        }

        var log = new PartitionLog(directory, options, [.. segments], producers, time, runtime, ownsRuntime)
        {
            RecoveredTruncatedBytes = truncated,
            RecoveryLostRecords = truncated > 0 || recoveryLeftAHole,
            CorruptionAfterCleanStop = corruption,
        };
        log._recoveryPoint = log.LogEndOffset;
        log._snapshotAt = keep;
        log._hasTxnIndexes = segments.Any(s => s.TxnIndex is not null);
        producers.HighWatermarkMoved(log.HighWatermark); // every marker on disk is below it
        log._cleanedUpTo = Math.Clamp(options.CleanedUpTo, 0, log.LogEndOffset);
        log.LoadLeaderEpochs();
        return log;
    }

    /// <summary>
    /// The log end the files on disk prove was reached, whatever is left of the batches: the base
    /// offsets in segment names, the last entry of each offset index, producer snapshots (named by
    /// the log end at a clean stop), the start of the newest leader epoch, and the recovery point.
    /// </summary>
    private static long ProvenLogEnd(string directory, List<(string Path, long Base)> files, List<(string Path, long Offset)> snapshots, long recoveryPoint)
    {
        // The checkpoint is kept by topic name: it speaks for this directory only when it has segments.
        var proven = files.Count > 0 ? Math.Max(0, recoveryPoint) : 0;
        foreach (var (path, baseOffset) in files)
        {
            proven = Math.Max(proven, Math.Max(baseOffset, SegmentIndexes.IndexedEnd(path, baseOffset)));
        }

        foreach (var (_, offset) in snapshots)
        {
            proven = Math.Max(proven, offset);
        }

        if (LeaderEpochCache.Load(directory) is { Entries: [.., var newest] })
        {
            proven = Math.Max(proven, newest.StartOffset);
        }

        return proven;
    }

    private static List<(string Path, long Offset)> SnapshotFiles(string directory) =>
        System.IO.Directory.GetFiles(directory, "*.snapshot")
            .Select(p => (Path: p, Offset: long.TryParse(System.IO.Path.GetFileNameWithoutExtension(p), out var o) ? o : -1))
            .Where(f => f.Offset >= 0)
            .ToList();

    /// <summary>
    /// Feeds the producer state the batches at or after <paramref name="from"/> of segments whose
    /// indexes are trusted: headers, and a marker whole (its record says commit or abort). The
    /// transactions the markers end are already in the segments' transaction indexes.
    /// </summary>
    private static void ReplayProducerState(List<LogSegment> segments, long from, ProducerStateTable producers)
    {
        var header = new byte[RecordBatch.HeaderSize];
        foreach (var segment in segments.Where(s => s.NextOffset > from))
        {
            var size = segment.Size;
            for (var position = segment.LookupPosition(from); position + RecordBatch.HeaderSize <= size; position += RecordBatch.DeclaredSize(header))
            {
                segment.Read(header, position);
                var batch = new RecordBatchHeader(header);
                if (batch.LastOffset < from || !ProducerStateTable.Tracks(header))
                {
                    continue;
                }

                if (batch.IsControl && batch.TotalSize <= 64 * 1024 && position + batch.TotalSize <= size)
                {
                    var whole = new byte[batch.TotalSize];
                    segment.Read(whole, position);
                    producers.Update(whole);
                }
                else if (!batch.IsControl)
                {
                    producers.Update(header);
                }
            }
        }
    }
}
