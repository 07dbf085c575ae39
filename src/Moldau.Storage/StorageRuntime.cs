namespace Moldau.Storage;

/// <summary>
/// What the logs of one broker share, and nothing else in the process does: the pool of aligned
/// transfer buffers, the <c>moldau-flusher</c> threads that fsync, the <c>moldau-reader</c>
/// threads and buffer cap of the read-ahead with its idle sweep timer, each thread's read window,
/// the cache of open segment files, and the file layer a power-loss test observes. The broker creates one, passes it to every log it
/// opens, and disposes it after closing them; two brokers (or tests) in one process have one each.
/// </summary>
/// <remarks>
/// A log opened without one (<see cref="PartitionLog.Open(string, PartitionLogOptions, TimeProvider)"/>)
/// gets its own, with one thread of each kind, disposed with the log: fine for a tool or a test,
/// wasteful for a broker with many partitions. Threads start with their first piece of work.
/// Disposing stops the threads once their queued work is done, stops the sweep and frees the
/// pooled buffers; work handed in afterwards runs on the thread pool, and buffers still out are
/// freed as they come back, so a log closed after its runtime still closes cleanly.
/// </remarks>
public sealed class StorageRuntime : IDisposable
{
    private const int DefaultThreads = 4;

    private int _disposed;

    /// <summary>A runtime with four flusher and four reader threads.</summary>
    public StorageRuntime()
        : this(observer: null)
    {
    }

    /// <summary>
    /// A runtime with four flusher and four reader threads keeping at most
    /// <paramref name="openFilesMax"/> segment files open (<c>moldau.log.open.files.max</c>; -1:
    /// half the process's soft open-file limit).
    /// </summary>
    public StorageRuntime(int openFilesMax)
        : this(observer: null, openFilesMax: openFilesMax)
    {
    }

    /// <summary>A runtime whose file operations <paramref name="observer"/> sees (a power-loss test).</summary>
    internal StorageRuntime(IFileLayerObserver? observer, int flusherThreads = DefaultThreads, int readerThreads = DefaultThreads, int openFilesMax = -1)
    {
        Files = new FileLayer(observer);
        OpenFiles = new FileCache(FileCache.BudgetFor(openFilesMax));
        Buffers = new AlignedBufferPool();
        Flushers = new IoThreads("moldau-flusher", flusherThreads);
        ReadAhead = new ReadAheadCache(Buffers, readerThreads);
        ReadWindows = new ReadWindows(Buffers);
    }

    /// <summary>The seam over file writes and syncs.</summary>
    internal FileLayer Files { get; }

    /// <summary>The segment files open now, under the budget of descriptors.</summary>
    internal FileCache OpenFiles { get; }

    /// <summary>The aligned transfer buffers of direct I/O.</summary>
    internal AlignedBufferPool Buffers { get; }

    /// <summary>
    /// The threads that fsync partition logs. fsync blocks its thread for as long as the disk takes;
    /// on thread-pool threads, several partitions flushing at once would starve request handling, so
    /// a few dedicated threads take the logs that asked for a flush, one flush episode at a time.
    /// </summary>
    internal IoThreads Flushers { get; }

    /// <summary>The read-ahead's threads, buffer cap and sweep.</summary>
    internal ReadAheadCache ReadAhead { get; }

    /// <summary>Each thread's window over its last small direct read.</summary>
    internal ReadWindows ReadWindows { get; }

    /// <summary>True once disposed.</summary>
    public bool IsDisposed => Volatile.Read(ref _disposed) != 0;

    /// <summary>A runtime for one log alone: one thread of each kind.</summary>
    internal static StorageRuntime ForOneLog() => new(observer: null, flusherThreads: 1, readerThreads: 1);

    /// <inheritdoc/>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        Flushers.Dispose();
        ReadAhead.Dispose();
        ReadWindows.Dispose();
        Buffers.Dispose();
        OpenFiles.Dispose();
    }
}
