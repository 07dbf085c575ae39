using Microsoft.Extensions.Logging;

namespace Moldau.Broker;

/// <summary>
/// The broker: owns the topic registry, the partition logs and the request handlers, and
/// serves request frames handed to it by the network layer.
/// </summary>
public sealed class KafkaBroker : IRequestDispatcher, IAsyncDisposable
{
    private readonly BrokerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;

    /// <summary>Creates a broker over <paramref name="options"/>; call <see cref="Start"/> before serving.</summary>
    public KafkaBroker(BrokerOptions options, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _log = loggers.CreateLogger("Moldau.Broker");
        _time = time;
    }

    /// <summary>Opens the metadata log and partition logs.</summary>
    public void Start()
    {
        _log.LogInformation("broker {NodeId} starting with log.dirs {LogDirs} at {Time}", _options.NodeId, string.Join(",", _options.LogDirs), _time.GetUtcNow());
    }

    /// <inheritdoc/>
    public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionInfo connection, CancellationToken cancellationToken) =>
        ValueTask.FromResult(DispatchResult.CloseConnection("not implemented yet"));

    /// <summary>Finishes in-flight writes and closes every file.</summary>
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}
