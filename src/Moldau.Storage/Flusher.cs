using System.Collections.Concurrent;

namespace Moldau.Storage;

/// <summary>
/// The threads that fsync partition logs. fsync blocks its thread for as long as the disk takes;
/// on thread-pool threads, several partitions flushing at once would starve request handling, so
/// a few dedicated threads take the logs that asked for a flush, one flush episode at a time.
/// </summary>
internal static class Flusher
{
    private static readonly IoThreads Threads = new("moldau-flusher", 4);

    /// <summary>Queues one flush episode.</summary>
    public static void Enqueue(Action flush) => Threads.Enqueue(flush);
}

/// <summary>
/// The threads that read segment chunks ahead of consumers (see <see cref="DirectIo"/>): a direct
/// read waits for the device, which would starve request handling on thread-pool threads.
/// </summary>
internal static class ReadAheadThreads
{
    private static readonly IoThreads Threads = new("moldau-reader", 4);

    /// <summary>Queues one chunk load.</summary>
    public static void Enqueue(Action load) => Threads.Enqueue(load);
}

/// <summary>A few dedicated threads for work that blocks on the disk, taken in the order queued (shared by the storage engine and the connections' lanes).</summary>
public sealed class IoThreads
{
    private readonly BlockingCollection<Action> _work = [];

    public IoThreads(string name, int count)
    {
        for (var i = 0; i < count; i++)
        {
            new Thread(Run)
            {
                IsBackground = true,
                Name = $"{name}-{i}",
            }.Start();
        }
    }

    /// <summary>Queues <paramref name="work"/>.</summary>
    public void Enqueue(Action work) => _work.Add(work);

    private void Run()
    {
        foreach (var work in _work.GetConsumingEnumerable())
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
}
