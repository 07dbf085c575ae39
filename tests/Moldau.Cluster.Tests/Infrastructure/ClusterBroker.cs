using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Moldau.Cluster.Tests.Infrastructure;

/// <summary>
/// One Moldau broker process in cluster mode (the moldau executable built beside the tests), its
/// properties and log dir in a temporary directory; stopped by its process id (SIGTERM, or
/// SIGKILL for a crash), never by name.
/// </summary>
public sealed class ClusterBroker : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private readonly Process _process;

    private ClusterBroker(int nodeId, int port, string dir, Process process)
    {
        NodeId = nodeId;
        Port = port;
        Directory = dir;
        _process = process;
    }

    /// <summary>node.id.</summary>
    public int NodeId { get; }

    /// <summary>The PLAINTEXT port on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>host:port.</summary>
    public string Bootstrap => $"127.0.0.1:{Port}";

    /// <summary>The temporary directory (properties, log.dirs).</summary>
    public string Directory { get; }

    /// <summary>The process id.</summary>
    public int Pid => _process.Id;

    /// <summary>What the broker printed.</summary>
    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Starts a broker and waits until it accepts connections.</summary>
    /// <param name="nodeId">node.id.</param>
    /// <param name="postgres">The PostgreSQL connection string.</param>
    /// <param name="rgw">The Ceph cluster (its access keys).</param>
    /// <param name="bucket">The bucket.</param>
    /// <param name="extra">More (or overriding) server.properties.</param>
    /// <param name="endpoint">The S3 endpoint when not <paramref name="rgw"/>'s own gateway.</param>
    /// <param name="environment">Environment variables for the process (test hooks).</param>
    public static async Task<ClusterBroker> StartAsync(int nodeId, string postgres, CephRgwServer rgw, string bucket, IReadOnlyDictionary<string, string>? extra = null, string? endpoint = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"moldau-cluster-broker-{nodeId}-{Guid.NewGuid():N}"[..48]);
        System.IO.Directory.CreateDirectory(dir);
        var port = FreePort();
        var properties = new Dictionary<string, string>
        {
            ["node.id"] = nodeId.ToString(CultureInfo.InvariantCulture),
            ["listeners"] = $"PLAINTEXT://127.0.0.1:{port}",
            ["log.dirs"] = Path.Combine(dir, "data"),
            ["moldau.cluster.postgres.connection"] = postgres,
            ["moldau.cluster.s3.endpoint"] = endpoint ?? rgw.Endpoint,
            ["moldau.cluster.s3.bucket"] = bucket,
            ["moldau.cluster.s3.access.key"] = CephRgwServer.AccessKey,
            ["moldau.cluster.s3.secret.key"] = CephRgwServer.SecretKey,
            ["moldau.cluster.commit.interval.ms"] = "100",
            ["broker.session.timeout.ms"] = "6000",
            ["broker.heartbeat.interval.ms"] = "1000",
            ["group.initial.rebalance.delay.ms"] = "0",
        };
        foreach (var (k, v) in extra ?? new Dictionary<string, string>())
        {
            properties[k] = v;
        }

        var config = Path.Combine(dir, "server.properties");
        await File.WriteAllLinesAsync(config, properties.Select(kv => $"{kv.Key}={kv.Value}"));
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "moldau"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(config);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }
        var process = new Process { StartInfo = start };
        var broker = new ClusterBroker(nodeId, port, dir, process);
        process.OutputDataReceived += (_, e) => broker.Append(e.Data);
        process.ErrorDataReceived += (_, e) => broker.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"broker {nodeId} exited with {process.ExitCode}:\n{broker.Output}");
            }

            try
            {
                using var probe = new TcpClient();
                await probe.ConnectAsync(IPAddress.Loopback, port);
                return broker;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        await broker.DisposeAsync();
        throw new TimeoutException($"broker {nodeId} did not listen on {port}:\n{broker.Output}");
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }

    /// <summary>kill -9 by process id.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-KILL", Pid.ToString(CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
            await _process.WaitForExitAsync();
        }
    }

    /// <summary>SIGSTOP (a pause: the process keeps its sockets but answers nothing) by process id.</summary>
    public Task PauseAsync() => SignalAsync("-STOP");

    /// <summary>SIGCONT by process id.</summary>
    public Task ResumeAsync() => SignalAsync("-CONT");

    private async Task SignalAsync(string signal)
    {
        using var kill = Process.Start("kill", [signal, Pid.ToString(CultureInfo.InvariantCulture)]);
        await kill.WaitForExitAsync();
    }

    /// <summary>SIGTERM by process id, then SIGKILL if it has not stopped within 20 s; removes the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            using (var term = Process.Start("kill", ["-TERM", Pid.ToString(CultureInfo.InvariantCulture)]))
            {
                await term.WaitForExitAsync();
            }

            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                await KillAsync();
            }
        }

        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    /// <summary>A port nothing listens on right now.</summary>
    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>Waits up to 30 s until <paramref name="condition"/> holds on each of <paramref name="brokers"/>, asked directly.</summary>
    public static async Task WaitOnEachAsync(IEnumerable<ClusterBroker> brokers, Func<Confluent.Kafka.IAdminClient, bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        foreach (var broker in brokers)
        {
            using var admin = new Confluent.Kafka.AdminClientBuilder(new Confluent.Kafka.AdminClientConfig { BootstrapServers = broker.Bootstrap }).Build();
            while (true)
            {
                try
                {
                    if (condition(admin))
                    {
                        break;
                    }
                }
                catch (Confluent.Kafka.KafkaException)
                {
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"not true: {what} (broker {broker.NodeId})\n{broker.Output}");
                }

                await Task.Delay(200);
            }
        }
    }
}
