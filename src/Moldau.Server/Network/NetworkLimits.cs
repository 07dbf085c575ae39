using System.Net;

namespace Moldau.Server.Network;

/// <summary>What the network layer allows a client: frame sizes, memory, connections and time.</summary>
internal sealed record NetworkLimits
{
    /// <summary>Default of queued.max.request.bytes when unset: Kafka's -1 (unbounded) is no bound at all.</summary>
    public const long DefaultQueuedMaxRequestBytes = 256L * 1024 * 1024;

    /// <summary>socket.request.max.bytes: the largest frame a client may declare.</summary>
    public int MaxFrameBytes { get; init; } = 104857600;

    /// <summary>queued.max.request.bytes: bytes of request frames held across all connections; 0 or less is unbounded, as in Kafka.</summary>
    public long QueuedMaxRequestBytes { get; init; } = DefaultQueuedMaxRequestBytes;

    /// <summary>max.connections: open connections across all listeners; the next one waits to be accepted.</summary>
    public int MaxConnections { get; init; } = int.MaxValue;

    /// <summary>Connections the open-file limit leaves room for (see DescriptorLimit); past it a new connection is closed at once, whatever max.connections says.</summary>
    public int DescriptorConnections { get; init; } = int.MaxValue;

    /// <summary>max.connections.per.ip: open connections from one address; the next one is closed.</summary>
    public int MaxConnectionsPerIp { get; init; } = int.MaxValue;

    /// <summary>max.connections.per.ip.overrides: a limit per address instead of <see cref="MaxConnectionsPerIp"/>.</summary>
    public IReadOnlyDictionary<IPAddress, int> MaxConnectionsPerIpOverrides { get; init; } = new Dictionary<IPAddress, int>();

    /// <summary>connections.max.idle.ms: a connection with nothing received, nothing in flight for this long is closed.</summary>
    public long ConnectionsMaxIdleMs { get; init; } = 600_000;

    /// <summary>sasl.server.max.receive.size: the largest frame before a SASL listener's client authenticated (Kafka's default 512 KiB).</summary>
    public int SaslServerMaxReceiveBytes { get; init; } = 524288;

    /// <summary>moldau.request.receive.timeout.ms: a request's first byte to its last; a slower one closes the connection.</summary>
    public long RequestReceiveTimeoutMs { get; init; } = 30_000;
}
