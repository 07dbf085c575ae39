using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Moldau.Broker;

namespace Moldau.Server.Network;

/// <summary>Accepts connections on one listener and serves each independently.</summary>
internal sealed class KafkaListener : IAsyncDisposable
{
    private static long s_nextConnectionId;
    private readonly Socket _socket;
    private readonly string _name;
    private readonly ILogger _log;
    private readonly HashSet<Task> _connections = [];
    private readonly Lock _connectionsLock = new();
    private Task? _acceptLoop;

    private KafkaListener(Socket socket, string name, ILogger log)
    {
        _socket = socket;
        _name = name;
        _log = log;
    }

    /// <summary>The bound address.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Binds <paramref name="host"/>:<paramref name="port"/>; an empty host binds every interface.</summary>
    public static KafkaListener Bind(string name, string host, int port, ILogger log)
    {
        IPAddress address;
        if (string.IsNullOrEmpty(host) || host == "0.0.0.0")
        {
            address = string.IsNullOrEmpty(host) && Socket.OSSupportsIPv6 ? IPAddress.IPv6Any : IPAddress.Any;
        }
        else if (!IPAddress.TryParse(host, out address!))
        {
            address = Dns.GetHostAddresses(host).OrderBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).First();
        }

        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (address.Equals(IPAddress.IPv6Any))
        {
            socket.DualMode = true;
        }

        // SO_REUSEADDR alone, so that a restart binds while old connections sit in TIME_WAIT. .NET's
        // ReuseAddress option also sets SO_REUSEPORT on Linux, which lets a second broker bind the
        // same port and take some of the connections: a busy port must fail the bind instead.
        if (OperatingSystem.IsLinux())
        {
            const int SolSocket = 1, SoReuseAddr = 2;
            socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
        }

        socket.Bind(new IPEndPoint(address, port));
        socket.Listen(512);
        return new KafkaListener(socket, name, log);
    }

    /// <summary>Starts accepting; each connection is served by <paramref name="dispatcher"/>.</summary>
    public void Start(IRequestDispatcher dispatcher, int maxFrameBytes, CancellationToken stopping) =>
        _acceptLoop = AcceptLoopAsync(dispatcher, maxFrameBytes, stopping);

    private async Task AcceptLoopAsync(IRequestDispatcher dispatcher, int maxFrameBytes, CancellationToken stopping)
    {
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _socket.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                break;
            }
            catch (SocketException e)
            {
                _log.LogWarning("accept on {Listener} failed: {Error}", _name, e.Message);
                continue;
            }

            client.NoDelay = true;
            var info = new ConnectionInfo(Interlocked.Increment(ref s_nextConnectionId), client.RemoteEndPoint, _name);
            var connection = new KafkaConnection(client, dispatcher, info, maxFrameBytes, _log, stopping);
            var task = Task.Run(() => ServeAsync(connection, info, stopping), CancellationToken.None);
            lock (_connectionsLock)
            {
                _connections.Add(task);
            }

            _ = task.ContinueWith(
                t =>
                {
                    lock (_connectionsLock)
                    {
                        _connections.Remove(t);
                    }
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(KafkaConnection connection, ConnectionInfo info, CancellationToken stopping)
    {
        try
        {
            await connection.RunAsync(stopping).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            // Nothing escapes a connection: log it, and the other connections go on.
            _log.LogError(e, "connection {Id} from {Peer} failed", info.Id, info.Remote);
        }
    }

    /// <summary>Stops accepting, then waits (bounded) for the open connections to finish.</summary>
    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        Task[] open;
        lock (_connectionsLock)
        {
            open = [.. _connections];
        }

        await Task.WhenAny(Task.WhenAll(open), Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
    }
}
