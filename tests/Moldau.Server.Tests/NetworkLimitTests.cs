using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Moldau.Broker;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

/// <summary>The pieces behind the network limits, on a fake clock: no test here sleeps to let time pass.</summary>
public sealed class NetworkLimitTests
{
    private sealed class Lines : ILogger
    {
        public List<string> Logged { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (Logged)
            {
                Logged.Add(formatter(state, exception));
            }
        }
    }

    [Fact]
    public void RefusalsOfOneKindAreLoggedOncePerInterval()
    {
        var time = new FakeTimeProvider();
        var lines = new Lines();
        var refusals = new RefusalLog(lines, time, TimeSpan.FromSeconds(10));
        for (var i = 0; i < 100; i++)
        {
            refusals.Refused("max.connections.per.ip", "refused " + i);
        }

        refusals.Refused("connections.max.idle.ms", "idle");
        Assert.Equal(["refused 0", "idle"], lines.Logged);

        time.Advance(TimeSpan.FromSeconds(10));
        refusals.Refused("max.connections.per.ip", "refused again");
        Assert.Equal(3, lines.Logged.Count);
        Assert.Contains("refused again (99 more max.connections.per.ip refusals", lines.Logged[2], StringComparison.Ordinal);
    }

    [Fact]
    public async Task TheBudgetGrantsWhatFitsAndWaitersWhenBytesComeBack()
    {
        var budget = new FrameBudget(100);
        Assert.True(budget.TryTake(60));
        Assert.False(budget.TryTake(50));
        var waiting = budget.TakeAsync(50, CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);

        // A small request that still fits is not held back by the large one waiting.
        Assert.True(budget.TryTake(30));
        budget.Give(30);
        Assert.False(waiting.IsCompleted);

        budget.Give(60);
        await waiting;
        Assert.Equal(50, budget.Used);

        // A waiter that gives up takes nothing.
        using var cancel = new CancellationTokenSource();
        var abandoned = budget.TakeAsync(60, cancel.Token).AsTask();
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => abandoned);
        budget.Give(50);
        Assert.Equal(0, budget.Used);
        Assert.Equal(long.MaxValue, new FrameBudget(-1).Capacity);
    }

    [Fact]
    public async Task QuotasCountPerAddressWithOverridesAndSlotsInTotal()
    {
        var quotas = new ConnectionQuotas(new NetworkLimits
        {
            MaxConnections = 3,
            MaxConnectionsPerIp = 1,
            MaxConnectionsPerIpOverrides = new Dictionary<IPAddress, int> { [IPAddress.Parse("10.0.0.2")] = 2 },
        });
        var a = IPAddress.Parse("10.0.0.1");
        var b = IPAddress.Parse("::ffff:10.0.0.2"); // as a dual-mode socket reports it
        Assert.True(quotas.TryTakeSlot() && quotas.TryAdd(a, out _));
        Assert.True(quotas.TryTakeSlot());
        Assert.False(quotas.TryAdd(a, out var limit));
        Assert.Equal(1, limit);
        Assert.True(quotas.TryAdd(b, out _));
        Assert.True(quotas.TryTakeSlot() && quotas.TryAdd(b, out _));
        Assert.False(quotas.TryTakeSlot());
        var waiting = quotas.TakeSlotAsync(CancellationToken.None).AsTask();
        Assert.False(waiting.IsCompleted);
        quotas.Remove(a);
        await waiting.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(3, quotas.Total);
    }

    private sealed class SilentDispatcher : IRequestDispatcher
    {
        public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession connection, CancellationToken cancellationToken) =>
            ValueTask.FromResult(DispatchResult.Send(new byte[4], 4));
    }

    [Fact]
    public async Task TimeoutsFollowTheInjectedClock()
    {
        var time = new FakeTimeProvider();
        var lines = new Lines();
        var limits = new NetworkLimits { MaxFrameBytes = 1 << 20, ConnectionsMaxIdleMs = 60_000, RequestReceiveTimeoutMs = 5_000 };
        using var stop = new CancellationTokenSource();
        var listener = KafkaListener.Bind("PLAINTEXT", "127.0.0.1", 0, lines);
        listener.Start(new SilentDispatcher(), new NetworkContext(limits, time, lines), stop.Token);
        try
        {
            using var idle = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await idle.ConnectAsync(IPAddress.Loopback, listener.EndPoint.Port);
            using var partial = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await partial.ConnectAsync(IPAddress.Loopback, listener.EndPoint.Port);
            await partial.SendAsync(new byte[] { 0, 0, 0, 100, 1, 2 }, SocketFlags.None);

            // The partial request's first bytes must have been seen before the clock moves.
            await WaitForAsync(() => ReceivedSomething(listener));

            time.Advance(TimeSpan.FromSeconds(6));
            Assert.Equal(0, await ReceiveAsync(partial));
            Assert.Contains(lines.Logged, l => l.Contains("moldau.request.receive.timeout.ms", StringComparison.Ordinal));
            Assert.DoesNotContain(lines.Logged, l => l.Contains("connections.max.idle.ms", StringComparison.Ordinal));

            time.Advance(TimeSpan.FromSeconds(60));
            Assert.Equal(0, await ReceiveAsync(idle));
            Assert.Contains(lines.Logged, l => l.Contains("connections.max.idle.ms", StringComparison.Ordinal));
        }
        finally
        {
            await stop.CancelAsync();
            await listener.DisposeAsync();
        }
    }

    private static bool ReceivedSomething(KafkaListener listener) => listener.FramesBeingReceived > 0;

    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!condition())
        {
            await Task.Delay(10, cts.Token);
        }
    }

    private static async Task<int> ReceiveAsync(Socket s)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            return await s.ReceiveAsync(new byte[16], SocketFlags.None, cts.Token);
        }
        catch (SocketException)
        {
            return 0; // reset: closed as well
        }
    }
}
