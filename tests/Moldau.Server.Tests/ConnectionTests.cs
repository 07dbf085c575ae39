using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

/// <summary>The network layer over real sockets, with a dispatcher that only echoes.</summary>
public sealed class ConnectionTests : ListenerTestBase
{
    public ConnectionTests()
        : base(new EchoDispatcher(), maxFrameBytes: 1024)
    {
    }

    /// <summary>Answers a frame "api(2) version(2) correlation(4) delay-ms(4)" with its correlation id after the delay.</summary>
    private sealed class EchoDispatcher : IRequestDispatcher
    {
        public async ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession connection, CancellationToken cancellationToken)
        {
            var correlation = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
            var delay = frame.Length >= 12 ? BinaryPrimitives.ReadInt32BigEndian(frame.Span[8..]) : 0;
            if (delay == -1)
            {
                return DispatchResult.CloseConnection("asked to close");
            }

            if (delay == -2)
            {
                throw new InvalidOperationException("handler bug");
            }

            if (delay > 0)
            {
                await Task.Delay(delay, cancellationToken);
            }

            var response = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(response, 4);
            BinaryPrimitives.WriteInt32BigEndian(response.AsSpan(4), correlation);
            return DispatchResult.Send(response, 8);
        }
    }

    private static byte[] Frame(int correlation, int delay)
    {
        var f = new byte[16];
        BinaryPrimitives.WriteInt32BigEndian(f, 12);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(8), correlation);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(12), delay);
        return f;
    }

    private static async Task<int?> ReadCorrelationAsync(Socket s)
    {
        var buffer = new byte[8];
        var read = 0;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (read < 8)
        {
            var n = await s.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, cts.Token);
            if (n == 0)
            {
                return null;
            }

            read += n;
        }

        return BinaryPrimitives.ReadInt32BigEndian(buffer.AsSpan(4));
    }

    [Fact]
    public async Task PipelinedRequestsAreAnsweredInOrderEvenWhenEarlierOnesAreSlower()
    {
        using var s = await ConnectAsync();
        var all = new List<byte>();
        for (var i = 0; i < 200; i++)
        {
            all.AddRange(Frame(i, i % 10 == 0 ? 30 : 0));
        }

        await s.SendAsync(all.ToArray(), SocketFlags.None);
        for (var i = 0; i < 200; i++)
        {
            Assert.Equal(i, await ReadCorrelationAsync(s));
        }
    }

    [Fact]
    public async Task AFrameSplitIntoSingleBytesIsReassembled()
    {
        using var s = await ConnectAsync();
        foreach (var b in Frame(77, 0))
        {
            await s.SendAsync(new[] { b }, SocketFlags.None);
            await Task.Delay(2);
        }

        Assert.Equal(77, await ReadCorrelationAsync(s));
    }

    [Theory]
    [InlineData(1025)]
    [InlineData(-1)]
    public async Task ABadSizeClosesOnlyThatConnection(int size)
    {
        using var other = await ConnectAsync();
        using var bad = await ConnectAsync();
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, size);
        await bad.SendAsync(prefix, SocketFlags.None);
        Assert.Null(await ReadCorrelationAsync(bad));

        await other.SendAsync(Frame(5, 0), SocketFlags.None);
        Assert.Equal(5, await ReadCorrelationAsync(other));
    }

    [Fact]
    public async Task EarlierResponsesGoOutBeforeACloseAndNothingAfter()
    {
        using var s = await ConnectAsync();
        await s.SendAsync(Frame(1, 20).Concat(Frame(2, -1)).Concat(Frame(3, 0)).ToArray(), SocketFlags.None);
        Assert.Equal(1, await ReadCorrelationAsync(s));
        Assert.Null(await ReadCorrelationAsync(s));
    }

    [Fact]
    public async Task AHandlerExceptionClosesTheConnectionButNotTheServer()
    {
        using (var s = await ConnectAsync())
        {
            await s.SendAsync(Frame(1, -2), SocketFlags.None);
            Assert.Null(await ReadCorrelationAsync(s));
        }

        using var next = await ConnectAsync();
        await next.SendAsync(Frame(9, 0), SocketFlags.None);
        Assert.Equal(9, await ReadCorrelationAsync(next));
    }

    [Fact]
    public async Task ADeclaredSizeWithoutItsBytesKeepsTheConnectionWaiting()
    {
        using var s = await ConnectAsync();
        var prefix = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(prefix, 1000);
        await s.SendAsync(prefix, SocketFlags.None);

        // Nothing to answer yet; then the rest arrives and the frame is served.
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        var buffer = new byte[8];
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await s.ReceiveAsync(buffer, SocketFlags.None, cts.Token));
        var body = new byte[1000];
        BinaryPrimitives.WriteInt32BigEndian(body.AsSpan(4), 42);
        await s.SendAsync(body, SocketFlags.None);
        Assert.Equal(42, await ReadCorrelationAsync(s));
    }

    [Fact]
    public async Task ManyConnectionsAtOnce()
    {
        var sockets = await Task.WhenAll(Enumerable.Range(0, 100).Select(_ => ConnectAsync()));
        try
        {
            await Task.WhenAll(sockets.Select((s, i) => s.SendAsync(Frame(i, 5), SocketFlags.None)));
            for (var i = 0; i < sockets.Length; i++)
            {
                Assert.Equal(i, await ReadCorrelationAsync(sockets[i]));
            }
        }
        finally
        {
            foreach (var s in sockets)
            {
                s.Dispose();
            }
        }
    }
}
