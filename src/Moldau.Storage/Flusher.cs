using System.Collections.Concurrent;

namespace Moldau.Storage;

/// <summary>
/// The threads that fsync partition logs. fsync blocks its thread for as long as the disk takes;
/// on thread-pool threads, several partitions flushing at once would starve request handling, so
/// a few dedicated threads take the logs that asked for a flush, one flush episode at a time.
/// </summary>
internal static class Flusher
{
    private const int Threads = 4;
    private static readonly BlockingCollection<Action> Work = Start();

    /// <summary>Queues one flush episode.</summary>
    public static void Enqueue(Action flush) => Work.Add(flush);

    private static BlockingCollection<Action> Start()
    {
        var work = new BlockingCollection<Action>();
        for (var i = 0; i < Threads; i++)
        {
            new Thread(() =>
            {
                foreach (var flush in work.GetConsumingEnumerable())
                {
                    try
                    {
                        flush();
                    }
                    catch (Exception)
                    {
                        // A flush episode reports its own failures to its waiters; the thread goes on.
                    }
                }
            })
            {
                IsBackground = true,
                Name = $"moldau-flusher-{i}",
            }.Start();
        }

        return work;
    }
}
