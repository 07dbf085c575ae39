using System.Collections.Concurrent;

namespace Moldau.Storage;

/// <summary>
/// What the read-ahead of every segment of one <see cref="StorageRuntime"/> shares: the
/// <c>moldau-reader</c> threads that load chunks, a cap on the buffers held, and a timer that
/// gives the buffers of idle readers back to the pool.
/// </summary>
internal sealed class ReadAheadCache : IDisposable
{
    private const int MaxBuffers = 64;
    private const int SweepMilliseconds = 500;

    private readonly ConcurrentDictionary<SegmentReadAhead, byte> _holding = new();
    private readonly AlignedBufferPool _pool;
    private readonly IoThreads _readers;
    private int _buffers;
    private Timer? _sweep;
    private volatile bool _disposed;

    public ReadAheadCache(AlignedBufferPool pool, int readerThreads)
    {
        _pool = pool;
        _readers = new IoThreads("moldau-reader", readerThreads);
    }

    /// <summary>Queues a chunk load on the reader threads.</summary>
    public void Enqueue(Action load) => _readers.Enqueue(load);

    /// <summary>A buffer for a chunk, unless the runtime's read-ahead holds as many as it may (then reads simply go to the device).</summary>
    public AlignedBuffer? TryTake()
    {
        if (Interlocked.Increment(ref _buffers) > MaxBuffers)
        {
            Interlocked.Decrement(ref _buffers);
            return null;
        }

        return _pool.Rent();
    }

    /// <summary>A chunk's buffer goes back.</summary>
    public void GiveBack(AlignedBuffer buffer)
    {
        _pool.Return(buffer);
        Interlocked.Decrement(ref _buffers);
    }

    /// <summary><paramref name="ahead"/> holds buffers: the sweep looks at it from now on.</summary>
    public void Holding(SegmentReadAhead ahead)
    {
        if (_holding.TryAdd(ahead, 0) && Volatile.Read(ref _sweep) is null && !_disposed)
        {
            var timer = new Timer(static c => ((ReadAheadCache)c!).Sweep(), this, SweepMilliseconds, SweepMilliseconds);
            if (Interlocked.CompareExchange(ref _sweep, timer, null) is not null)
            {
                timer.Dispose();
            }
        }
    }

    /// <summary><paramref name="ahead"/> holds no buffer any more.</summary>
    public void NotHolding(SegmentReadAhead ahead) => _holding.TryRemove(ahead, out _);

    /// <inheritdoc/>
    public void Dispose()
    {
        _disposed = true;
        Interlocked.Exchange(ref _sweep, null)?.Dispose();
        _readers.Dispose();
    }

    // Gives the buffers of readers idle for a while back to the pool.
    private void Sweep()
    {
        var now = Environment.TickCount64;
        foreach (var ahead in _holding.Keys)
        {
            ahead.ReleaseIfIdle(now);
        }
    }
}

/// <summary>
/// Chunks fetched ahead of a consumer, for one segment read with direct I/O: the next few aligned
/// megabytes after where it reads load in the background (on the runtime's reader threads) while
/// it works through the ones before. A reader that needs a chunk still queued loads it itself; one
/// that is loading, it waits for. Buffers come from the runtime's pool through its
/// <see cref="ReadAheadCache"/>, and go back once their reader is idle for a second, so a consumer
/// that stopped holds none.
/// </summary>
internal sealed class SegmentReadAhead(LogSegment segment, CachedFile direct, ReadAheadCache cache)
{
    private const int Depth = 6;
    private const int ChunkBytes = DirectIo.ChunkSize;
    private const long IdleMilliseconds = 1000;

    private readonly object _lock = new();
    private readonly Chunk[] _chunks = [.. Enumerable.Range(0, Depth + 1).Select(_ => new Chunk())];
    private bool _closed;
    private long _lastUse;

    private enum State
    {
        Empty,
        Queued,
        Loading,
        Ready,
    }

    private sealed class Chunk
    {
        public Action? Load;
        public AlignedBuffer? Buffer;
        public long Start = -1;
        public int Valid;
        public State State;
    }

    /// <summary>Copies what the chunks hold from <paramref name="position"/> on; returns the bytes copied.</summary>
    public int Copy(Span<byte> destination, long position)
    {
        var done = 0;
        lock (_lock)
        {
            _lastUse = Environment.TickCount64;
            while (done < destination.Length && !_closed)
            {
                var at = position + done;
                var chunk = Holding(at);
                if (chunk is null)
                {
                    break;
                }

                if (chunk.State == State.Queued)
                {
                    // Needed now: load it on this thread rather than wait for its turn.
                    chunk.State = State.Loading;
                    Monitor.Exit(_lock);
                    try
                    {
                        Load(chunk, claimed: true);
                    }
                    finally
                    {
                        Monitor.Enter(_lock);
                    }

                    continue;
                }

                if (chunk.State == State.Loading)
                {
                    Monitor.Wait(_lock);
                    continue;
                }

                if (at >= chunk.Start + chunk.Valid)
                {
                    break;
                }

                var n = (int)Math.Min(destination.Length - done, chunk.Start + chunk.Valid - at);
                chunk.Buffer!.Span.Slice((int)(at - chunk.Start), n).CopyTo(destination[done..]);
                done += n;
            }
        }

        return done;
    }

    /// <summary>The consumer reads on from <paramref name="position"/>: the chunks from there on are loaded, or queued.</summary>
    public void Start(long position)
    {
        lock (_lock)
        {
            if (_closed)
            {
                return;
            }

            _lastUse = Environment.TickCount64;
            // The chunks from the one holding position on; the one before stays too (a
            // consumer goes on from the end of the last whole batch it got, often just before).
            var size = segment.Size;
            var first = position / ChunkBytes * ChunkBytes;
            var end = first + (Depth * ChunkBytes);
            var keep = first - ChunkBytes;
            for (var start = first; start < end && start < size; start += ChunkBytes)
            {
                var at = start;
                var existing = Holding(at);
                if (existing is not null && (existing.State is State.Queued or State.Loading || existing.Valid == ChunkBytes || existing.Start + existing.Valid >= size))
                {
                    continue; // loaded (or on its way) as far as there is data
                }

                // The chunk for this range holding less than there is now, else one behind the reader.
                var free = existing ?? Reusable(keep, end);
                if (free is null)
                {
                    break;
                }

                if (free.Buffer is null)
                {
                    free.Buffer = cache.TryTake();
                    if (free.Buffer is null)
                    {
                        break;
                    }

                    cache.Holding(this);
                }

                free.State = State.Queued;
                free.Start = at;
                free.Valid = 0;
                free.Load ??= LoadOf(free);
                cache.Enqueue(free.Load);
            }
        }
    }

    /// <summary>No more reads: the buffers go back (a chunk loading now gives its own back when done).</summary>
    public void Close()
    {
        lock (_lock)
        {
            _closed = true;
            ReleaseAll();
            Monitor.PulseAll(_lock);
        }
    }

    /// <summary>Gives the buffers back when the consumer last read more than a second before <paramref name="now"/>.</summary>
    public void ReleaseIfIdle(long now)
    {
        lock (_lock)
        {
            if (now - _lastUse >= IdleMilliseconds)
            {
                ReleaseAll();
            }
        }
    }

    // A separate method: a lambda in Start's loop would allocate its closure on every pass.
    private Action LoadOf(Chunk chunk) => () => Load(chunk, claimed: false);

    // The chunk holding the range of position, if any.
    private Chunk? Holding(long position)
    {
        foreach (var chunk in _chunks)
        {
            if (chunk.State != State.Empty && position >= chunk.Start && position < chunk.Start + ChunkBytes)
            {
                return chunk;
            }
        }

        return null;
    }

    // A chunk not loading and outside [keep, end): never used, or behind the reader.
    private Chunk? Reusable(long keep, long end)
    {
        foreach (var chunk in _chunks)
        {
            if (chunk.State is State.Empty or State.Ready && (chunk.Start < keep || chunk.Start >= end))
            {
                return chunk;
            }
        }

        return null;
    }

    private void Load(Chunk chunk, bool claimed)
    {
        if (!claimed)
        {
            lock (_lock)
            {
                if (chunk.State != State.Queued)
                {
                    return; // a reader took it
                }

                chunk.State = State.Loading;
            }
        }

        var valid = 0;
        try
        {
            // Only bytes below the size seen before the read are kept: they never change.
            // The direct handle leased for the read: the cache may have closed it while cold.
            var size = segment.Size;
            using var file = direct.Lease();
            var read = RandomAccess.Read(file.Handle, chunk.Buffer!.Span, chunk.Start);
            valid = (int)Math.Max(0, Math.Min(read, size - chunk.Start));
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            // Nothing kept: the consumer's own read reports the error.
        }

        lock (_lock)
        {
            chunk.Valid = valid;
            chunk.State = State.Ready;
            if (_closed)
            {
                Release(chunk);
            }

            Monitor.PulseAll(_lock);
        }
    }

    private void ReleaseAll()
    {
        var holding = false;
        foreach (var chunk in _chunks)
        {
            if (chunk.State is State.Loading)
            {
                holding = true;
            }
            else
            {
                Release(chunk);
            }
        }

        if (!holding)
        {
            cache.NotHolding(this);
        }
    }

    private void Release(Chunk chunk)
    {
        if (chunk.Buffer is not null)
        {
            cache.GiveBack(chunk.Buffer);
            chunk.Buffer = null;
            chunk.Start = -1;
            chunk.Valid = 0;
            chunk.State = State.Empty;
        }
    }
}
