using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Moldau.Broker;
using Moldau.Security.Tls;
using Moldau.Server.Configuration;

namespace Moldau.Server.Network;

/// <summary>
/// Accepts connections on one listener and serves each independently, within the broker-wide
/// connection quotas; a timer closes connections that sat idle or left a request half-sent.
/// </summary>
internal sealed class KafkaListener : IAsyncDisposable
{
    private static long s_nextConnectionId;
    private readonly Socket _socket;
    private readonly string _name;
    private readonly string _securityProtocol;
    private readonly ILogger _log;
    private readonly TlsAcceptor? _tls;
    private readonly Dictionary<Task, KafkaConnection> _connections = [];
    private readonly Lock _connectionsLock = new();
    private Task? _acceptLoop;
    private ITimer? _timeouts;

    // The most connections open since memory was last given back (see GiveBackMemory).
    private int _peak;

    private KafkaListener(Socket socket, string name, string securityProtocol, ILogger log, TlsServer? tls)
    {
        _socket = socket;
        _name = name;
        _securityProtocol = securityProtocol;
        _log = log;
        _tls = tls is null ? null : new TlsAcceptor(tls, name, log);
    }

    /// <summary>The listener's name (PLAINTEXT, or the name listeners= gives it).</summary>
    public string Name => _name;

    /// <summary>Connections open now (for /metrics).</summary>
    public int ConnectionCount
    {
        get
        {
            lock (_connectionsLock)
            {
                return _connections.Count;
            }
        }
    }

    /// <summary>Connections accepted since the listener started (for /metrics).</summary>
    public long ConnectionsCreated => Interlocked.Read(ref _created);

    private long _created;

    /// <summary>The bound address.</summary>
    public IPEndPoint EndPoint => (IPEndPoint)_socket.LocalEndPoint!;

    /// <summary>Binds <paramref name="host"/>:<paramref name="port"/>; an empty host binds every interface.</summary>
    public static KafkaListener Bind(string name, string host, int port, ILogger log) => Bind(new ListenerConfig(name, host, port), log);

    /// <summary>Binds the listener's host and port; an empty host binds every interface. With <paramref name="tls"/> (SSL, SASL_SSL) connections run over TLS.</summary>
    public static KafkaListener Bind(ListenerConfig listener, ILogger log, TlsServer? tls = null)
    {
        var (name, host, port) = (listener.Name, listener.Host, listener.Port);
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
        return new KafkaListener(socket, name, listener.SecurityProtocol, log, tls);
    }

    /// <summary>Starts accepting; each connection is served by <paramref name="dispatcher"/> within the limits of <paramref name="network"/>.</summary>
    public void Start(IRequestDispatcher dispatcher, NetworkContext network, CancellationToken stopping)
    {
        var limits = network.Limits;
        var shortest = limits.ConnectionsMaxIdleMs >= 0 ? Math.Min(limits.ConnectionsMaxIdleMs, limits.RequestReceiveTimeoutMs) : limits.RequestReceiveTimeoutMs;
        var period = TimeSpan.FromMilliseconds(Math.Clamp(shortest / 4, 10, 1000));
        _timeouts = network.Time.CreateTimer(_ => CheckTimeouts(network.Time.GetTimestamp()), null, period, period);
        _tls?.StartReloading(network.Time);
        _acceptLoop = AcceptLoopAsync(dispatcher, network, stopping);
    }

    /// <summary>Connections with part of a frame received (for tests).</summary>
    internal int FramesBeingReceived
    {
        get
        {
            lock (_connectionsLock)
            {
                return _connections.Values.Count(c => c.IsReceivingFrame);
            }
        }
    }

    private void CheckTimeouts(long now)
    {
        KafkaConnection[] open;
        lock (_connectionsLock)
        {
            open = [.. _connections.Values];
        }

        foreach (var c in open)
        {
            c.CheckTimeouts(now);
        }

        GiveBackMemory(open.Length);
    }

    // After a burst of connections closes (at least 1,000, down to a quarter), a compacting
    // collection returns the freed heap to the system instead of keeping it for the next burst.
    private void GiveBackMemory(int connections)
    {
        if (connections > _peak)
        {
            _peak = connections;
        }
        else if (_peak >= 1000 && connections < _peak / 4)
        {
            _log.LogInformation("{Listener}: {Peak} connections down to {Now}, giving memory back", _name, _peak, connections);
            _peak = connections;
            GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        }
    }

    private async Task AcceptLoopAsync(IRequestDispatcher dispatcher, NetworkContext network, CancellationToken stopping)
    {
        var quotas = network.Quotas;
        var shortage = new AcceptShortage(_name, _log);
        while (!stopping.IsCancellationRequested)
        {
            Socket client;
            try
            {
                // At max.connections, stop accepting until one closes, as Kafka does: the new
                // connections wait in the listen backlog rather than being refused.
                if (!quotas.TryTakeSlot())
                {
                    network.Refusals.Refused(
                        "max.connections",
                        $"max.connections ({network.Limits.MaxConnections}) open: {_name} accepts no new connection until one closes");
                    await quotas.TakeSlotAsync(stopping).ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException)
            {
                break;
            }

            try
            {
                client = await _socket.AcceptAsync(stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                quotas.Remove(null);
                break;
            }
            catch (Exception e) when (AcceptShortage.IsShortage(e))
            {
                quotas.Remove(null);
                try
                {
                    await shortage.OnShortageAsync(_socket, e, stopping).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                continue;
            }
            catch (SocketException e)
            {
                quotas.Remove(null);
                network.Refusals.Refused("accept", $"accept on {_name} failed: {e.Message}");
                continue;
            }

            shortage.OnAccepted();

            if (quotas.Total > network.Limits.DescriptorConnections)
            {
                // Past the descriptors left for connections the broker itself would run out of them.
                quotas.Remove(null);
                network.Refusals.Refused(
                    "open files",
                    $"closing a new connection from {client.RemoteEndPoint}: {network.Limits.DescriptorConnections} connections use the descriptors the open-file limit leaves for them");
                client.LingerState = new LingerOption(true, 0);
                client.Dispose();
                continue;
            }

            var address = (client.RemoteEndPoint as IPEndPoint)?.Address;
            var limit = 0;
            if (address is null || !quotas.TryAdd(address, out limit))
            {
                quotas.Remove(null);
                network.Refusals.Refused(
                    "max.connections.per.ip",
                    $"closing a new connection from {client.RemoteEndPoint}: {(address is null ? "no peer address" : $"{ConnectionQuotas.Normalize(address)} has {limit} connections open (max.connections.per.ip)")}");
                client.Dispose();
                continue;
            }

            client.NoDelay = true;
            Interlocked.Increment(ref _created);
            // The session is what the broker knows of the connection; the stream is what it reads
            // and writes (on a TLS listener the connection wraps it in TLS first).
            var info = new ConnectionSession(
                Interlocked.Increment(ref s_nextConnectionId),
                client.RemoteEndPoint,
                _name,
                _securityProtocol,
                requiresAuthentication: _securityProtocol.StartsWith("SASL_", StringComparison.Ordinal));
            var connection = new KafkaConnection(new NetworkStream(client, ownsSocket: true), dispatcher, info, network, stopping, _tls);
            var task = Task.Run(() => ServeAsync(connection, info, stopping), CancellationToken.None);
            lock (_connectionsLock)
            {
                if (!task.IsCompleted)
                {
                    _connections.Add(task, connection);
                }
            }

            _ = task.ContinueWith(
                t =>
                {
                    lock (_connectionsLock)
                    {
                        _connections.Remove(t);
                    }

                    quotas.Remove(address);
                },
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default);
        }
    }

    private async Task ServeAsync(KafkaConnection connection, ConnectionSession info, CancellationToken stopping)
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
        if (_timeouts is not null)
        {
            await _timeouts.DisposeAsync().ConfigureAwait(false);
        }

        if (_tls is not null)
        {
            await _tls.DisposeAsync().ConfigureAwait(false);
        }

        if (_acceptLoop is not null)
        {
            await _acceptLoop.ConfigureAwait(false);
        }

        Task[] open;
        lock (_connectionsLock)
        {
            open = [.. _connections.Keys];
        }

        await Task.WhenAny(Task.WhenAll(open), Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
    }
}
