namespace Moldau.Storage;

/// <summary>
/// Creating the log of a new partition without an fsync of its own: an empty log holds nothing a
/// crash could lose, so its files become durable with its first flush, before the first write
/// that needs them is acknowledged.
/// </summary>
/// <remarks>
/// What makes that safe: the caller fsyncs the log dir once for all the partitions it creates
/// (so their directories survive) before their metadata records are written. After a crash, a
/// partition directory missing its segment, or missing altogether, is opened as an empty log
/// (<see cref="Open(string, PartitionLogOptions, TimeProvider, StorageRuntime)"/> creates what
/// is not there). The first flush (<see cref="SyncToDisk"/>: an acks=all write, Kafka's flush
/// settings, the acks=1 linger, a clean close) fsyncs the segment, writes the leader-epoch
/// checkpoint kept in memory until then (<see cref="LeaderEpochCache.Deferred"/>), and fsyncs
/// the directory, which makes the entries of the segment, its index files and the checkpoint
/// durable together.
/// </remarks>
public sealed partial class PartitionLog
{
    /// <summary>
    /// Creates an empty log in <paramref name="directory"/>, which must not exist yet, with no
    /// fsync (see the remarks on this file); with <paramref name="runtime"/> null it gets a
    /// runtime of its own that closes with it.
    /// </summary>
    internal static PartitionLog CreateNew(string directory, PartitionLogOptions options, TimeProvider time, StorageRuntime? runtime)
    {
        ArgumentNullException.ThrowIfNull(time);
        var owned = runtime is null;
        runtime ??= StorageRuntime.ForOneLog();
        LogSegment? segment = null;
        try
        {
            ObjectDisposedException.ThrowIf(runtime.IsDisposed, runtime);
            System.IO.Directory.CreateDirectory(directory);
            segment = LogSegment.Create(directory, options.InitialOffset, options.IndexIntervalBytes, runtime, options.DirectIo);
            var log = new PartitionLog(directory, options, [segment], new ProducerStateTable(), time, runtime, owned)
            {
                _leaderEpochs = LeaderEpochCache.Deferred(directory),
                _directoryDirty = true,
            };
            log._recoveryPoint = log.LogEndOffset;
            log._cleanedUpTo = Math.Clamp(options.CleanedUpTo, 0, log.LogEndOffset);
            return log;
        }
        catch
        {
            segment?.Dispose();
            if (owned)
            {
                runtime.Dispose();
            }

            throw;
        }
    }
}
