using System.Diagnostics;
using System.Net;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Moldau.Broker;
using Moldau.Server;
using Moldau.Server.Configuration;
using Moldau.Server.Logging;
using Moldau.Server.Network;

// `moldau topic list`, `moldau --version`, ...: the admin commands (Moldau.Cli); anything else starts the broker.
if (Moldau.Cli.CliApp.Handles(args))
{
    return await Moldau.Cli.CliApp.RunAsync(args);
}

var started = Stopwatch.GetTimestamp();

// Before anything opens a file: the soft open-file limit up to the hard one.
var descriptors = DescriptorLimit.Raise();

// Signals first: a SIGTERM that arrives during start-up still shuts down cleanly.
using var stopping = new CancellationTokenSource();
var stopped = new TaskCompletionSource();
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    stopped.TrySetResult();
}

using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
var level = (Environment.GetEnvironmentVariable("MOLDAU_LOG_LEVEL") ?? "info").ToLowerInvariant() switch
{
    "trace" => LogLevel.Trace,
    "debug" => LogLevel.Debug,
    "warning" or "warn" => LogLevel.Warning,
    "error" => LogLevel.Error,
    _ => LogLevel.Information,
};
using var loggers = new ConsoleLoggerFactory(level);
var log = loggers.CreateLogger("Moldau.Server");

ServerConfig config;
CommandLine commandLine;
try
{
    commandLine = CommandLine.Parse(args);
    if (commandLine.Help)
    {
        Console.WriteLine(CommandLine.Usage);
        return 0;
    }

    config = ServerConfig.From(commandLine.LoadProperties());
}
catch (ConfigException e)
{
    Console.Error.WriteLine($"moldau: configuration error: {e.Message}");
    return 2;
}

foreach (var key in config.UnknownKeys)
{
    log.LogWarning("unknown configuration key '{Key}' ignored", key);
}

if (int.TryParse(config.Options.Properties.GetValueOrDefault("moldau.log.open.files.max"), System.Globalization.CultureInfo.InvariantCulture, out var openFilesMax))
{
    descriptors = descriptors.WithStorageShare(openFilesMax);
}

// Connections get what the descriptor limit leaves once storage and a reserve are served; past
// that share (when max.connections is not set) new connections wait, as past max.connections.
var network = config.Network with { DescriptorConnections = descriptors.ConnectionShare };
if (network.MaxConnections == int.MaxValue)
{
    network = network with { MaxConnections = descriptors.ConnectionShare };
}

// Bind first, so that port 0 can be advertised as the port actually bound.
var listeners = new List<KafkaListener>();
var advertised = new List<AdvertisedEndpoint>();
foreach (var l in config.Listeners)
{
    KafkaListener listener;
    try
    {
        listener = KafkaListener.Bind(l, loggers.CreateLogger("Moldau.Network"), config.Tls.GetValueOrDefault(l.Name));
    }
    catch (System.Net.Sockets.SocketException e)
    {
        // No port sharing: a busy port means another process (another broker?) serves it.
        var what = e.SocketErrorCode == System.Net.Sockets.SocketError.AddressAlreadyInUse
            ? $"port {l.Port} is already in use by another process"
            : e.Message;
        Console.Error.WriteLine($"moldau: cannot bind listener {l.Name}://{l.Host}:{l.Port}: {what}");
        return 3;
    }

    listeners.Add(listener);
    var a = config.Advertised.GetValueOrDefault(l.Name);
    var host = a is { Host.Length: > 0 } ? a.Host : l.Host is { Length: > 0 } h && h != "0.0.0.0" ? h : Dns.GetHostName();
    var port = a is { Port: > 0 } ? a.Port : listener.EndPoint.Port;
    advertised.Add(new AdvertisedEndpoint(l.Name, host, port));
}

config.Options.AdvertisedEndpoints = advertised;
var broker = new KafkaBroker(config.Options, loggers, TimeProvider.System);
try
{
    broker.Start();

    // --add-scram: credentials go to the metadata log before any client is served.
    Moldau.Broker.Security.ScramBootstrap.Apply(broker, commandLine.AddScram);
}
catch (Moldau.Storage.LogDirectoryInUseException e)
{
    // Another broker (Moldau or Kafka) holds the directory's .lock: nothing was written there.
    Console.Error.WriteLine($"moldau: {e.Message}");
    return 4;
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException)
{
    Console.Error.WriteLine($"moldau: cannot open log.dirs {string.Join(",", config.Options.LogDirs)}: {e.Message}");
    return 4;
}

// Said once the listeners are bound and the logs open, so a start that fails says only why.
log.LogInformation(
    "open-file limit {Soft} (hard {Hard}): up to {Storage} for partition files (moldau.log.open.files.max), {Connections} connections (max.connections{Capped}), {Reserve} reserved",
    descriptors.Soft,
    descriptors.Hard,
    descriptors.StorageShare,
    network.MaxConnections,
    network.MaxConnections == descriptors.ConnectionShare ? ", from the limit" : string.Empty,
    descriptors.Reserve);

var networkContext = new NetworkContext(network, TimeProvider.System, loggers.CreateLogger("Moldau.Network")) { Metrics = broker.Metrics.Requests };
foreach (var listener in listeners)
{
    listener.Start(broker, networkContext, stopping.Token);
}

// The HTTP listener (metrics, health), when moldau.http.listeners names one, starts beside the
// Kafka listeners, which already accept: its start-up (Kestrel, the exporter) delays nothing.
// An address that can't be bound stops the broker, as a Kafka listener's would.
var exitCode = 0;
var httpStarting = config.HttpListeners.Count == 0 ? Task.FromResult<Moldau.Server.Http.HttpEndpoint?>(null) : Task.Run(StartHttpAsync);
async Task<Moldau.Server.Http.HttpEndpoint?> StartHttpAsync()
{
    try
    {
        // Ready once started: the Kafka listeners accept before this runs.
        var endpoint = await Moldau.Server.Http.HttpEndpoint.StartAsync(config.HttpListeners, broker, listeners, () => true, []);
        log.LogInformation("HTTP listener (/metrics, /health/live, /health/ready) on {Urls}", string.Join(", ", endpoint.Urls));

        // One scrape of our own now: the first one compiles the exporter's path (0.5-0.7 s of CPU
        // on a busy 2-core machine), better at start-up than in the middle of a client's traffic.
        try
        {
            using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
            using var _ = await client.GetAsync(endpoint.Urls[0] + "/metrics", HttpCompletionOption.ResponseContentRead, stopping.Token);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
        }

        return endpoint;
    }
    catch (Exception e) when (e is IOException or System.Net.Sockets.SocketException or InvalidOperationException)
    {
        Console.Error.WriteLine($"moldau: cannot bind moldau.http.listeners {string.Join(",", config.HttpListeners)}: {e.Message}");
        exitCode = 3;
        stopped.TrySetResult();
        return null;
    }
}

log.LogInformation(
    "Moldau {Version}, mode {Mode}, node.id {NodeId}, log.dirs {LogDirs}, listeners {Listeners}",
    Moldau.Cli.CliApp.Version,
    $"single node (process.roles={config.Options.Properties.GetValueOrDefault("process.roles", "broker,controller")}, local storage)",
    config.Options.NodeId,
    string.Join(",", config.Options.LogDirs),
    string.Join(", ", config.Listeners.Zip(listeners, (c, l) => $"{c.Name}://{l.EndPoint}")));
log.LogInformation(
    "Moldau started in {Ms} ms, listening on {Listeners}, advertising {Advertised}",
    (int)Stopwatch.GetElapsedTime(started).TotalMilliseconds,
    string.Join(", ", listeners.Select(l => l.EndPoint)),
    string.Join(", ", advertised.Select(a => $"{a.ListenerName}://{a.Host}:{a.Port}")));

await stopped.Task;
log.LogInformation("shutting down");
if (await httpStarting is { } http)
{
    await http.DisposeAsync();
}

await stopping.CancelAsync();
foreach (var listener in listeners)
{
    await listener.DisposeAsync();
}

await broker.DisposeAsync();
log.LogInformation("stopped");
return exitCode;
