using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

/// <summary>A listener on a free loopback port serving <paramref name="dispatcher"/>, for one test class.</summary>
public abstract class ListenerTestBase(IRequestDispatcher dispatcher, int maxFrameBytes) : IAsyncLifetime
{
    private readonly CancellationTokenSource _stop = new();
    private KafkaListener? _listener;

    /// <summary>The port the listener took.</summary>
    protected int Port => _listener!.EndPoint.Port;

    public Task InitializeAsync()
    {
        _listener = KafkaListener.Bind("PLAINTEXT", "127.0.0.1", 0, NullLogger.Instance);
        _listener.Start(dispatcher, new NetworkContext(new NetworkLimits { MaxFrameBytes = maxFrameBytes }, TimeProvider.System, NullLogger.Instance), _stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _listener!.DisposeAsync();
        _stop.Dispose();
    }

    /// <summary>A new client connection to the listener.</summary>
    protected async Task<Socket> ConnectAsync()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(IPAddress.Loopback, Port);
        return s;
    }
}
