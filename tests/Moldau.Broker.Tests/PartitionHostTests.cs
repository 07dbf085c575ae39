using Moldau.Broker.Topics;

namespace Moldau.Broker.Tests;

/// <summary>
/// The append signal of a partition (long-polling fetches): a fetcher that takes the task, then
/// finds nothing new, is woken by a later append, whatever the interleaving with other signals.
/// </summary>
public sealed class PartitionHostTests
{
    [Fact]
    public void ATakenTaskIsCompletedByTheNextSignal()
    {
        var host = new PartitionHost();
        var task = host.NextAppend;
        Assert.False(task.IsCompleted);
        host.SignalAppend();
        Assert.True(task.IsCompleted);
    }

    [Fact]
    public void ASignalNobodyWaitedForLeavesTheNextTaskForTheNextAppend()
    {
        var host = new PartitionHost();
        host.SignalAppend();
        var task = host.NextAppend;
        Assert.False(task.IsCompleted);
        host.SignalAppend();
        Assert.True(task.IsCompleted);
    }

    /// <summary>
    /// An appender publishes and signals without pause while a fetcher takes the task, reads the
    /// published count, and waits only when nothing new was published since its last read. A task
    /// taken while a signal clears the "taken" note must still be completed by a later signal;
    /// otherwise the fetcher waits forever although appends keep coming (the wait is bounded here
    /// only so the test ends).
    /// </summary>
    [Fact]
    public async Task AFetcherRacingTheSignalsIsAlwaysWokenByALaterAppend()
    {
        var host = new PartitionHost();
        long published = 0;
        using var done = new CancellationTokenSource();
        var appender = Task.Run(() =>
        {
            while (!done.IsCancellationRequested)
            {
                Interlocked.Increment(ref published);
                host.SignalAppend();
            }
        });

        try
        {
            long seen = 0;
            for (var i = 0; i < 100_000; i++)
            {
                var next = host.NextAppend;
                var now = Interlocked.Read(ref published);
                if (now != seen)
                {
                    seen = now;
                    continue;
                }

                var woken = await Task.WhenAny(next, Task.Delay(TimeSpan.FromSeconds(10)));
                Assert.True(ReferenceEquals(woken, next), $"iteration {i}: appends kept coming, the fetcher was not woken");
            }
        }
        finally
        {
            await done.CancelAsync();
            await appender;
        }
    }
}
