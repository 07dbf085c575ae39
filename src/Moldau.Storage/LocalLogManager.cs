using Microsoft.Extensions.Logging;

namespace Moldau.Storage;

/// <summary>
/// The local <see cref="ILogManager"/>: each partition is a <c>topic-partition</c> directory of
/// segments in one of the log dirs, as Kafka lays them out. Creating it reads each log dir's
/// checkpoints (recovery points, cleaner offsets, log start offsets) and takes away its
/// clean-shutdown marker; disposing it closes every log, writes the checkpoints and puts the
/// marker back in each dir whose logs all closed cleanly.
/// </summary>
public sealed class LocalLogManager : ILogManager
{
    /// <summary>The marker Kafka writes in a log dir after closing all its logs cleanly.</summary>
    public const string CleanShutdownFile = ".kafka_cleanshutdown";

    private readonly IReadOnlyList<string> _logDirs;
    private readonly Func<IReadOnlyDictionary<string, string>, LogOpenState, PartitionLogOptions> _options;
    private readonly TimeProvider _time;
    private readonly StorageRuntime? _runtime;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly HashSet<string> _cleanLogDirs = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Topic, int Partition), long> _recoveryPoints = [];
    private readonly Dictionary<(string Topic, int Partition), long> _cleanerOffsets = [];
    private readonly Dictionary<(string Topic, int Partition), long> _logStartOffsets = [];
    private readonly Dictionary<PartitionLog, LogPartition> _open = [];
    private readonly UnopenedLogs _unopened = new();
    private readonly FileSystemSync _fileSystems;

    // One delegate for every log (a closure per log was about 150 B a partition).
    private readonly Action<PartitionLog, IOException?> _storageErrorChanged;

    /// <summary>
    /// Takes over <paramref name="logDirs"/>; <paramref name="options"/> makes a log's options from
    /// its topic's configs and what the log dir says about it.
    /// </summary>
    public LocalLogManager(IReadOnlyList<string> logDirs, Func<IReadOnlyDictionary<string, string>, LogOpenState, PartitionLogOptions> options, TimeProvider time, ILogger log, StorageRuntime? runtime = null)
    {
        _logDirs = logDirs;
        _options = options;
        _time = time;
        _runtime = runtime;
        _log = log;
        _storageErrorChanged = StorageErrorChanged;

        // Opened before anything is written, so the clean stop's syncfs sees every write-back error from here on.
        _fileSystems = new FileSystemSync(logDirs, runtime?.Files);
        // Kafka's clean-shutdown marker: present means every log in that dir was closed cleanly,
        // so its segments, indexes and producer snapshots are trusted as they are. It goes at
        // once: after a crash from here on, the next start reads the logs through.
        foreach (var logDir in logDirs.Where(d => File.Exists(Path.Combine(d, CleanShutdownFile))))
        {
            _cleanLogDirs.Add(Path.GetFullPath(logDir));
            File.Delete(Path.Combine(logDir, CleanShutdownFile));
            DirectorySync.Sync(logDir);
        }

        foreach (var logDir in logDirs)
        {
            _unopened.AddLogDir(logDir, _cleanLogDirs.Contains(Path.GetFullPath(logDir)));
            Merge(_recoveryPoints, ReadCheckpoint(logDir, LogStartOffsetCheckpoint.RecoveryPointFileName));
            Merge(_cleanerOffsets, ReadCheckpoint(logDir, LogStartOffsetCheckpoint.CleanerOffsetFileName));
            Merge(_logStartOffsets, ReadCheckpoint(logDir, LogStartOffsetCheckpoint.FileName));
        }

        // After a crash: what opening the logs will have to read through, in one line per log dir.
        foreach (var logDir in logDirs.Where(d => Directory.Exists(d) && !_cleanLogDirs.Contains(Path.GetFullPath(d))))
        {
            var (partitions, bytes) = BytesPastRecoveryPoints(logDir);
            if (partitions > 0)
            {
                _log.LogWarning(
                    "log dir {LogDir} was not closed cleanly: {Partitions} partition logs to recover, {Bytes} bytes past their recovery points to read through",
                    logDir, partitions, bytes);
            }
        }

        static void Merge(Dictionary<(string, int), long> into, Dictionary<(string Topic, int Partition), long> from)
        {
            foreach (var (key, offset) in from)
            {
                into[key] = offset;
            }
        }
    }

    private void StorageErrorChanged(PartitionLog log, IOException? error)
    {
        var partition = Path.GetFileName(log.Directory);
        if (error is null)
        {
            _log.LogInformation("{Partition}: appends work again", partition);
        }
        else
        {
            _log.LogError("{Partition}: append failed, answering KAFKA_STORAGE_ERROR until one succeeds: {Error}", partition, error.Message);
        }
    }

    /// <summary>Reads a checkpoint of <paramref name="logDir"/>, and keeps its entries for the logs not opened yet (<see cref="UnopenedLogs"/>).</summary>
    private Dictionary<(string Topic, int Partition), long> ReadCheckpoint(string logDir, string fileName)
    {
        var entries = LogStartOffsetCheckpoint.Read(logDir, fileName);
        _unopened.AddCheckpoint(logDir, fileName, entries);
        return entries;
    }

    /// <inheritdoc/>
    public bool Exists(LogPartition partition) =>
        _logDirs.Any(d => Directory.Exists(Path.Combine(d, partition.ToString())));

    /// <summary>
    /// Opens the log of one partition: the existing <c>topic-partition</c> directory in whichever
    /// log dir holds it, else a new one in the log dir with the fewest partitions. The log start
    /// offset recorded for it is applied, and <c>partition.metadata</c> written where missing.
    /// </summary>
    public IPartitionLog Open(LogPartition partition, IReadOnlyDictionary<string, string> topicConfigs)
    {
        var dirName = partition.ToString();
        var key = (partition.Topic, partition.Partition);
        var dir = _logDirs.Select(d => Path.Combine(d, dirName)).FirstOrDefault(Directory.Exists)
            ?? Path.Combine(_logDirs.MinBy(CountPartitions)!, dirName);
        LogOpenState state;
        lock (_lock)
        {
            state = new LogOpenState(
                dir,
                _cleanLogDirs.Contains(Path.GetFullPath(Path.GetDirectoryName(dir)!)),
                _recoveryPoints.GetValueOrDefault(key),
                _cleanerOffsets.GetValueOrDefault(key));
        }

        var log = _runtime is null
            ? PartitionLog.Open(dir, _options(topicConfigs, state), _time)
            : PartitionLog.Open(dir, _options(topicConfigs, state), _time, _runtime);
        try
        {
            if (PartitionMetadataFile.Read(dir) is null)
            {
                PartitionMetadataFile.Write(dir, partition.TopicId);
            }

            lock (_lock)
            {
                if (_logStartOffsets.GetValueOrDefault(key) is > 0 and var start)
                {
                    log.AdvanceLogStartOffset(start);
                }

                _open[log] = partition;
                _unopened.Opened(Path.GetDirectoryName(dir)!, key);
            }
        }
        catch
        {
            log.Dispose();
            throw;
        }

        log.OnStorageErrorChanged = _storageErrorChanged;
        return log;
    }

    /// <summary>
    /// Creates the logs of a topic's new partitions, several at a time (<see cref="CreateParallelism"/>),
    /// each without an fsync of its own (<see cref="CreateOne"/>), then syncs each log dir that got a
    /// new directory once, rather than once per partition. On the first refusal the logs already
    /// created are closed and removed, and the refusal is thrown.
    /// </summary>
    public IReadOnlyList<IPartitionLog> Create(IReadOnlyList<LogPartition> partitions, IReadOnlyDictionary<string, string> topicConfigs)
    {
        var created = new IPartitionLog?[partitions.Count];
        Exception? failure = null;
        Parallel.For(0, partitions.Count, new ParallelOptions { MaxDegreeOfParallelism = CreateParallelism }, (i, loop) =>
        {
            if (Volatile.Read(ref failure) is not null)
            {
                return;
            }

            try
            {
                created[i] = CreateOne(partitions[i], topicConfigs);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Interlocked.CompareExchange(ref failure, e, null);
                loop.Stop();
            }
        });

        if (failure is null)
        {
            try
            {
                foreach (var logDir in created.Select(l => Path.GetDirectoryName(((PartitionLog)l!).Directory)!).Distinct(StringComparer.Ordinal))
                {
                    DirectorySync.Sync(logDir);
                }

                return [.. created.Select(l => l!)];
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                failure = e;
            }
        }

        for (var i = 0; i < created.Length; i++)
        {
            if (created[i] is { } log)
            {
                Delete(partitions[i], log);
            }
        }

        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        return [];
    }

    /// <summary>
    /// The log of one new partition, in a directory made for it in the log dir with the fewest
    /// partitions: an empty segment and <c>partition.metadata</c>, none of it fsynced
    /// (<see cref="PartitionLog.CreateNew"/>: durable with the log dir's fsync in <see cref="Create"/>
    /// and the log's first flush). A directory already there (left by a creation or deletion a
    /// crash interrupted) is opened as it is, as before.
    /// </summary>
    private IPartitionLog CreateOne(LogPartition partition, IReadOnlyDictionary<string, string> topicConfigs)
    {
        var dirName = partition.ToString();
        if (_logDirs.Any(d => Directory.Exists(Path.Combine(d, dirName))))
        {
            return Open(partition, topicConfigs);
        }

        var dir = Path.Combine(_logDirs.MinBy(CountPartitions)!, dirName);
        var key = (partition.Topic, partition.Partition);
        lock (_lock)
        {
            // Checkpoint entries of an earlier topic of this name (a deletion a crash cut short) don't apply.
            _recoveryPoints.Remove(key);
            _cleanerOffsets.Remove(key);
            _logStartOffsets.Remove(key);
        }

        var log = PartitionLog.CreateNew(dir, _options(topicConfigs, new LogOpenState(dir, false, 0, 0)), _time, _runtime);
        try
        {
            PartitionMetadataFile.WriteUnsynced(dir, partition.TopicId);
            lock (_lock)
            {
                _open[log] = partition;
            }
        }
        catch
        {
            log.Dispose();
            throw;
        }

        log.OnStorageErrorChanged = _storageErrorChanged;
        return log;
    }

    /// <summary>How many logs <see cref="Create"/> creates at a time.</summary>
    private static int CreateParallelism => Math.Max(4, 2 * Environment.ProcessorCount);

    /// <summary>
    /// Closes the log and removes its directory. Kafka renames it to
    /// <c>topic-partition.id-delete</c> and deletes later; the topic's removal is already durable,
    /// so the files can go now.
    /// </summary>
    public void Delete(LogPartition partition, IPartitionLog? log)
    {
        var local = (PartitionLog?)log;
        var key = (partition.Topic, partition.Partition);
        var dirs = local is null
            ? _logDirs.Select(d => Path.Combine(d, partition.ToString())).Where(Directory.Exists).ToList()
            : [local.Directory];
        lock (_lock)
        {
            if (local is not null)
            {
                _open.Remove(local);
            }

            // A topic made again under this name starts from nothing the old one left.
            _recoveryPoints.Remove(key);
            _cleanerOffsets.Remove(key);
            _logStartOffsets.Remove(key);
            foreach (var logDir in _logDirs)
            {
                _unopened.Opened(logDir, key);
            }
        }

        local?.Dispose();
        foreach (var dir in dirs)
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException e)
            {
                _log.LogWarning("could not remove {Dir}: {Error}", dir, e.Message);
            }
        }
    }

    /// <summary>Advances a log's start offset and records it in its log dir's <c>log-start-offset-checkpoint</c>.</summary>
    public void AdvanceLogStart(IPartitionLog log, long offset)
    {
        lock (_lock)
        {
            log.AdvanceLogStartOffset(offset);
        }

        WriteCheckpoints(LogStartOffsetCheckpoint.FileName, l => l.LogStartOffset);
    }

    /// <summary>
    /// Writes each log dir's <c>recovery-point-offset-checkpoint</c>: per partition, the offset below
    /// which its log is known to be on disk (Kafka writes it every
    /// <c>log.flush.offset.checkpoint.interval.ms</c> and at shutdown). An unclean start reads
    /// through only the segments past it.
    /// </summary>
    public void WriteRecoveryPoints() =>
        WriteCheckpoints(LogStartOffsetCheckpoint.RecoveryPointFileName, l => l.RecoveryPoint);

    /// <summary>Writes each log dir's <c>cleaner-offset-checkpoint</c>: how far each compacted log was cleaned.</summary>
    public void WriteCleanerOffsets() =>
        WriteCheckpoints(LogStartOffsetCheckpoint.CleanerOffsetFileName, l => l.CleanedUpTo);

    private void WriteCheckpoints(string fileName, Func<PartitionLog, long> offsetOf)
    {
        lock (_lock)
        {
            foreach (var logDir in _logDirs)
            {
                var full = Path.GetFullPath(logDir);
                var entries = new Dictionary<(string, int), long>();
                _unopened.AddTo(entries, logDir, fileName);
                foreach (var (log, partition) in _open)
                {
                    if (Path.GetFullPath(Path.GetDirectoryName(log.Directory)!) == full && offsetOf(log) > 0)
                    {
                        entries[(partition.Topic, partition.Partition)] = offsetOf(log);
                    }
                }

                try
                {
                    LogStartOffsetCheckpoint.Write(logDir, entries, fileName);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _log.LogWarning("could not write {File} in {LogDir}: {Error}", fileName, logDir, e.Message);
                }
            }
        }
    }

    /// <summary>
    /// The partition directories of <paramref name="logDir"/> and the bytes of their segments that
    /// an unclean open reads through: those that do not end at or below the recovery point
    /// (<see cref="PartitionLog"/> trusts the others as they are).
    /// </summary>
    private (int Partitions, long Bytes) BytesPastRecoveryPoints(string logDir)
    {
        var partitions = 0;
        long bytes = 0;
        foreach (var dir in Directory.EnumerateDirectories(logDir))
        {
            var name = Path.GetFileName(dir);
            var dash = name.LastIndexOf('-');
            if (dash <= 0 || !int.TryParse(name.AsSpan(dash + 1), out var index) || name.StartsWith("__cluster_metadata", StringComparison.Ordinal))
            {
                continue;
            }

            var recoveryPoint = _recoveryPoints.GetValueOrDefault((name[..dash], index));
            var segments = new DirectoryInfo(dir).EnumerateFiles("*.log")
                .Select(f => (File: f, Base: long.TryParse(Path.GetFileNameWithoutExtension(f.Name), out var b) ? b : -1))
                .Where(f => f.Base >= 0)
                .OrderBy(f => f.Base)
                .ToList();
            partitions++;
            for (var i = 0; i < segments.Count; i++)
            {
                if (i + 1 == segments.Count || segments[i + 1].Base > recoveryPoint)
                {
                    bytes += segments[i].File.Length;
                }
            }
        }

        return (partitions, bytes);
    }

    private int CountPartitions(string logDir) =>
        _logDirs.Count == 1 ? 0 : Directory.Exists(logDir) ? Directory.GetDirectories(logDir).Length : 0;

    /// <summary>
    /// How many logs <see cref="Dispose"/> closes at a time: closers wait on fsyncs that the journal
    /// commits together, so more waiting at once is faster (10,000 written logs: 5.2 s with 16, 3.1-3.4 s with 64).
    /// </summary>
    private static int CloseParallelism => Math.Max(64, 32 * Environment.ProcessorCount);

    /// <summary>
    /// A clean stop: closes every log, writes the checkpoints, and marks each log dir whose logs all
    /// closed cleanly. Where <c>syncfs</c> reports write-back errors (<see cref="FileSystemSync.Supported"/>)
    /// the logs are closed without an fsync each (their data, index files, producer snapshots and
    /// new entries only written), then each log dir's file system is synced once; only a dir whose
    /// sync succeeded gets its logs' recovery points moved to their ends and the marker (written
    /// and synced last). A crash at any moment before the marker is durable, or a failed sync,
    /// leaves no marker: the next start reads through everything past the recovery points, which
    /// never name data that was not synced.
    /// </summary>
    public void Dispose()
    {
        var unclean = new HashSet<string>(StringComparer.Ordinal);
        var syncEach = !FileSystemSync.Supported;
        List<PartitionLog> open;
        lock (_lock)
        {
            open = [.. _open.Keys];
        }

        // With an fsync each, closing a log is mostly waiting for them (a producer snapshot, the
        // directory), which the file system's journal commits together when many wait at once:
        // threads of their own (the thread pool would add blocked workers slowly) close several at
        // a time. Without, a close is a few small writes, a truncate and renames, which can still
        // wait on the journal: as many threads (2 of them at 10,000 written logs doubled the stop).
        var next = -1;
        var closers = Enumerable.Range(0, Math.Min(CloseParallelism, open.Count)).Select(_ => new Thread(() =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) < open.Count;)
            {
                var log = open[i];
                if (syncEach)
                {
                    log.Dispose();
                }
                else
                {
                    log.CloseWithoutSync();
                }

                if (!log.ClosedCleanly)
                {
                    lock (unclean)
                    {
                        unclean.Add(Path.GetFullPath(Path.GetDirectoryName(log.Directory)!));
                    }
                }
            }
        })
        { IsBackground = true, Name = "log-close" }).ToList();
        closers.ForEach(t => t.Start());
        closers.ForEach(t => t.Join());

        if (!syncEach)
        {
            // Everything the closes wrote (and all earlier writes) reaches the disk here, or the dir is not clean.
            var synced = new HashSet<string>(StringComparer.Ordinal);
            foreach (var (logDir, error) in _fileSystems.SyncAll())
            {
                if (error is null)
                {
                    synced.Add(Path.GetFullPath(logDir));
                }
                else if (Directory.Exists(logDir))
                {
                    unclean.Add(Path.GetFullPath(logDir));
                    _log.LogError("log dir {LogDir}: {Error}; no clean-shutdown marker, the next start recovers its logs", logDir, error.Message);
                }
            }

            foreach (var log in open.Where(l => l.ClosedCleanly && synced.Contains(Path.GetFullPath(Path.GetDirectoryName(l.Directory)!))))
            {
                log.MarkSyncedByFileSystem();
            }
        }

        _fileSystems.Dispose();
        WriteRecoveryPoints();
        WriteCleanerOffsets();

        // A dir that was not closed cleanly is marked clean only once all its logs were read through.
        lock (_lock)
        {
            unclean.UnionWith(_logDirs.Where(d => !_unopened.AllRecovered(d)).Select(Path.GetFullPath));
        }

        foreach (var logDir in _logDirs.Where(d => Directory.Exists(d) && !unclean.Contains(Path.GetFullPath(d))))
        {
            var marker = Path.Combine(logDir, CleanShutdownFile);
            try
            {
                _runtime?.Files.BeforeWrite(marker);
                using (var f = new FileStream(marker, FileMode.Create, FileAccess.Write))
                {
                    f.Write("{\"version\":0,\"brokerEpoch\":-1}"u8);
                    f.Flush(flushToDisk: true);
                }

                DirectorySync.Sync(logDir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.LogWarning("could not write the clean-shutdown marker in {LogDir}: {Error}", logDir, e.Message);
                try
                {
                    File.Delete(marker); // a marker half written promises nothing
                }
                catch (Exception again) when (again is IOException or UnauthorizedAccessException)
                {
                }
            }
        }
    }
}
