using System.Collections.Concurrent;

namespace Moldau.Storage;

/// <summary>
/// A few dedicated threads for work that blocks on the disk (an fsync, a direct read), taken in
/// the order queued: on thread-pool threads such work would starve request handling. Used by the
/// storage engine (<see cref="StorageRuntime"/>: the flushers and the read-ahead readers) and by
/// the connections' lanes. The threads start with the first piece of work.
/// </summary>
public sealed class IoThreads : IDisposable
{
    private readonly BlockingCollection<Action> _work = [];
    private readonly string _name;
    private readonly int _count;
    private int _started;
    private volatile bool _disposed;

    /// <summary>Up to <paramref name="count"/> threads named <paramref name="name"/>-0, -1, ...</summary>
    public IoThreads(string name, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _name = name;
        _count = count;
    }

    /// <summary>
    /// Queues <paramref name="work"/>. Once disposed, work still handed in (a flush that was
    /// lingering, say) runs on the thread pool instead of being lost.
    /// </summary>
    public void Enqueue(Action work)
    {
        if (!_disposed)
        {
            if (Volatile.Read(ref _started) == 0 && Interlocked.Exchange(ref _started, 1) == 0)
            {
                for (var i = 0; i < _count; i++)
                {
                    new Thread(Run)
                    {
                        IsBackground = true,
                        Name = $"{_name}-{i}",
                    }.Start();
                }
            }

            try
            {
                _work.Add(work);
                return;
            }
            catch (InvalidOperationException)
            {
                // Disposed meanwhile.
            }
        }

        ThreadPool.UnsafeQueueUserWorkItem(static w => RunOne(w), work, preferLocal: false);
    }

    /// <summary>The threads finish the work queued so far, then end.</summary>
    public void Dispose()
    {
        _disposed = true;
        _work.CompleteAdding();
    }

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable())
        {
            RunOne(work);
        }
    }

    private static void RunOne(Action work)
    {
        try
        {
            work();
        }
        catch (Exception)
        {
            // Each piece of work reports its own failures (to flush waiters, to readers); the thread goes on.
        }
    }
}
