using Moldau.Broker.Topics;
using Moldau.Protocol;

namespace Moldau.Broker.Tests;

/// <summary>The signal long-polling fetches wait on: it wakes every waiter, and costs nothing when nobody waits.</summary>
public sealed class AppendSignalTests
{
    private static PartitionState Partition() =>
        new(new TopicInfo("t", Uuid.FromBytes(new byte[16])), 0, 0);

    [Fact]
    public async Task AWaiterThatTookTheTaskIsWokenByTheNextAppend()
    {
        var p = Partition();
        var waiting = p.NextAppend;
        Assert.False(waiting.IsCompleted);
        p.SignalAppend();
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));

        // The next waiter gets a fresh task, woken by the append after.
        var next = p.NextAppend;
        Assert.False(next.IsCompleted);
        p.SignalAppend();
        await next.WaitAsync(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task AppendsWithNobodyWaitingKeepTheTaskForTheNextWaiter()
    {
        var p = Partition();
        var before = p.NextAppend;
        p.SignalAppend(); // taken: completes it
        await before.WaitAsync(TimeSpan.FromSeconds(5));

        // Nobody takes the task for a while: appends leave it alone, allocating nothing.
        var allocated = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++)
        {
            p.SignalAppend();
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - allocated);

        // A waiter arriving now is still woken by the next append.
        var waiting = p.NextAppend;
        Assert.False(waiting.IsCompleted);
        p.SignalAppend();
        await waiting.WaitAsync(TimeSpan.FromSeconds(5));
    }
}
