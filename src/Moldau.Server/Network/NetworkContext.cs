using Microsoft.Extensions.Logging;

namespace Moldau.Server.Network;

/// <summary>What every listener and connection of one broker shares: the limits, the frame memory budget, the connection counts, the clock.</summary>
internal sealed class NetworkContext
{
    /// <summary>Refusals of one kind are logged at most this often.</summary>
    public static readonly TimeSpan RefusalLogInterval = TimeSpan.FromSeconds(10);

    public NetworkContext(NetworkLimits limits, TimeProvider time, ILogger log)
    {
        Limits = limits;
        Time = time;
        Log = log;
        Budget = new FrameBudget(limits.QueuedMaxRequestBytes);
        Quotas = new ConnectionQuotas(limits);
        Refusals = new RefusalLog(log, time, RefusalLogInterval);
    }

    public NetworkLimits Limits { get; }

    public TimeProvider Time { get; }

    public ILogger Log { get; }

    /// <summary>queued.max.request.bytes across all connections.</summary>
    public FrameBudget Budget { get; }

    /// <summary>max.connections and max.connections.per.ip across all listeners.</summary>
    public ConnectionQuotas Quotas { get; }

    /// <summary>Where connections record each request's times (null: not recorded).</summary>
    public Moldau.Broker.Metrics.RequestMetrics? Metrics { get; init; }

    /// <summary>One line per kind of refusal per interval.</summary>
    public RefusalLog Refusals { get; }
}
