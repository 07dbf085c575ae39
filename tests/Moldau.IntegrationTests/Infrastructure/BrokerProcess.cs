using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Moldau.IntegrationTests.Infrastructure;

/// <summary>
/// A real Moldau broker process (the built <c>moldau</c> executable) on a free port with its own
/// data directory, so tests can talk to it over TCP, restart it, and kill it with SIGKILL.
/// </summary>
public sealed class BrokerProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();
    private Process? _process;

    private BrokerProcess(string dataDir, int port, IReadOnlyDictionary<string, string> properties, int? openFilesLimit)
    {
        DataDir = dataDir;
        Port = port;
        Properties = properties;
        OpenFilesLimit = openFilesLimit;
    }

    /// <summary>Environment variables for the broker process (e.g. MOLDAU_LOG_LEVEL).</summary>
    public IReadOnlyDictionary<string, string>? ProcessEnvironment { get; private init; }

    /// <summary>When set, the broker runs under <c>ulimit -n</c> of this many open files (soft and hard).</summary>
    public int? OpenFilesLimit { get; }

    /// <summary>The log dir (log.dirs).</summary>
    public string DataDir { get; }

    /// <summary>The port it listens on, on 127.0.0.1.</summary>
    public int Port { get; }

    /// <summary>"127.0.0.1:port", for clients.</summary>
    public string BootstrapServers => $"127.0.0.1:{Port}";

    /// <summary>Extra server.properties entries.</summary>
    public IReadOnlyDictionary<string, string> Properties { get; }

    /// <summary>Command-line arguments after the properties file.</summary>
    public IReadOnlyList<string> Arguments { get; private init; } = [];

    /// <summary>The process id of the running broker.</summary>
    public int Pid => _process?.Id ?? throw new InvalidOperationException("not started");

    /// <summary>Everything the broker printed so far.</summary>
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

    /// <summary>
    /// Waits until the broker has printed <paramref name="text"/> (lines arrive asynchronously, some
    /// after the port accepts connections) and returns the output; throws with the output when it
    /// has not within <paramref name="timeout"/> (default 30 s).
    /// </summary>
    public async Task<string> WaitForOutputAsync(string text, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (true)
        {
            var output = Output;
            if (output.Contains(text, StringComparison.Ordinal))
            {
                return output;
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"the broker did not print \"{text}\":\n{output}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>A new, empty data directory under the temp folder.</summary>
    public static string NewDataDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "moldau-test-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Starts a broker over <paramref name="dataDir"/> (a new one when null) and waits until it accepts connections.</summary>
    /// <param name="arguments">Further command-line arguments after the properties file (such as --add-scram); not with <paramref name="openFilesLimit"/>.</param>
    /// <param name="port">The port (when <paramref name="properties"/> names it in its own listeners); a free one when null.</param>
    public static async Task<BrokerProcess> StartAsync(string? dataDir = null, IReadOnlyDictionary<string, string>? properties = null, int? openFilesLimit = null, IReadOnlyDictionary<string, string>? environment = null, IReadOnlyList<string>? arguments = null, int? port = null)
    {
        var broker = new BrokerProcess(dataDir ?? NewDataDir(), port ?? FreePort(), properties ?? new Dictionary<string, string>(), openFilesLimit) { ProcessEnvironment = environment, Arguments = arguments ?? [] };
        await broker.StartProcessAsync();
        return broker;
    }

    /// <summary>
    /// Starts a broker with a PLAINTEXT listener on its port (probed for readiness) and an SSL one
    /// on <paramref name="sslPort"/>; <paramref name="properties"/> carry the ssl.* keys.
    /// </summary>
    public static Task<BrokerProcess> StartWithListenersAsync(Dictionary<string, string> properties, int sslPort, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = FreePort();
        properties["listeners"] = $"PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{sslPort}";
        return StartOnPortAsync(port, properties, environment);
    }

    /// <summary>Starts a broker with PLAINTEXT on its port and <paramref name="listener"/> (e.g. <c>SASL_SSL://127.0.0.1:9093</c>) beside it.</summary>
    public static Task<BrokerProcess> StartWithListenerAsync(Dictionary<string, string> properties, string listener, IReadOnlyDictionary<string, string>? environment = null)
    {
        var port = FreePort();
        properties["listeners"] = $"PLAINTEXT://127.0.0.1:{port},{listener}";
        return StartOnPortAsync(port, properties, environment);
    }

    private static async Task<BrokerProcess> StartOnPortAsync(int port, IReadOnlyDictionary<string, string> properties, IReadOnlyDictionary<string, string>? environment)
    {
        var broker = new BrokerProcess(NewDataDir(), port, properties, null) { ProcessEnvironment = environment };
        try
        {
            await broker.StartProcessAsync();
        }
        catch
        {
            // A broker that refused to start (a test of its refusal) leaves no directory behind.
            await broker.DisposeAsync();
            throw;
        }

        return broker;
    }

    /// <summary>Starts the process again over the same data directory and port.</summary>
    public Task RestartAsync() => StartProcessAsync();

    private async Task StartProcessAsync()
    {
        var config = Path.Combine(DataDir, "..", Path.GetFileName(DataDir) + ".properties");
        var lines = new Dictionary<string, string>
        {
            ["node.id"] = "1",
            ["listeners"] = $"PLAINTEXT://127.0.0.1:{Port}",
            ["log.dirs"] = DataDir,
        };
        foreach (var (k, v) in Properties)
        {
            lines[k] = v;
        }

        await File.WriteAllLinesAsync(config, lines.Select(kv => $"{kv.Key}={kv.Value}"));
        var start = new ProcessStartInfo
        {
            FileName = OpenFilesLimit is null ? ServerExecutable() : "/bin/sh",
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in ProcessEnvironment ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }

        if (OpenFilesLimit is { } n)
        {
            // exec: the broker replaces the shell, so Pid and kill -9 reach the broker itself.
            start.ArgumentList.Add("-c");
            start.ArgumentList.Add($"ulimit -n {n} && exec \"$0\" \"$1\"");
            start.ArgumentList.Add(ServerExecutable());
        }

        start.ArgumentList.Add(config);
        foreach (var a in Arguments)
        {
            start.ArgumentList.Add(a);
        }
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                // The parameterless wait returns once the redirected output is read to its end, so
                // the message carries what the broker said before it exited.
                process.WaitForExit();
                throw new InvalidOperationException($"broker exited with {process.ExitCode}:\n{Output}");
            }

            if (await AcceptsAsync(Port) && await AllListenersAcceptAsync())
            {
                return;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"broker did not accept connections on every listener ({ListenerPorts().Aggregate(Port.ToString(CultureInfo.InvariantCulture), (a, p) => $"{a}, {p}")}):\n{Output}");
    }

    private static async Task<bool> AcceptsAsync(int port)
    {
        try
        {
            using var probe = new TcpClient();
            await probe.ConnectAsync(IPAddress.Loopback, port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    // Every loopback listener of the configuration listens, not just the PLAINTEXT one probed
    // above: a test that goes straight to its SSL port must find it serving. Read from
    // /proc/net/tcp rather than by connecting, so the broker logs no probe (an empty TLS
    // connection would log a handshake failure that tests look for).
    private async Task<bool> AllListenersAcceptAsync()
    {
        var ports = ListenerPorts().ToList();
        if (ports.Count == 0)
        {
            return true;
        }

        var listening = new HashSet<int>();
        foreach (var line in (await File.ReadAllLinesAsync("/proc/net/tcp")).Skip(1))
        {
            // "  0: 0100007F:2383 00000000:0000 0A ...": local address, remote address, state (0A = LISTEN).
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length > 3 && fields[3] == "0A")
            {
                listening.Add(int.Parse(fields[1][(fields[1].IndexOf(':') + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
            }
        }

        return ports.All(listening.Contains);
    }

    private IEnumerable<int> ListenerPorts() =>
        (Properties.GetValueOrDefault("listeners") ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => l.Contains("://127.0.0.1:", StringComparison.Ordinal))
            .Select(l => int.Parse(l[(l.LastIndexOf(':') + 1)..], CultureInfo.InvariantCulture))
            .Where(p => p != Port && p != 0);

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    /// <summary>The broker's process id (for /proc readings such as its resident memory).</summary>
    public int ProcessId => _process?.Id ?? throw new InvalidOperationException("not started");

    /// <summary>SIGKILL: no clean shutdown, as in a crash.</summary>
    public async Task KillAsync()
    {
        if (_process is { HasExited: false } p)
        {
            p.Kill(entireProcessTree: true);
            await p.WaitForExitAsync();
        }
    }

    /// <summary>SIGTERM, then waits for the exit code.</summary>
    public async Task<int> StopAsync(TimeSpan? timeout = null)
    {
        if (_process is not { } p)
        {
            return 0;
        }

        if (!p.HasExited)
        {
            using var kill = Process.Start("kill", ["-TERM", p.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            await kill.WaitForExitAsync();
            using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
            await p.WaitForExitAsync(cts.Token);
        }

        return p.ExitCode;
    }

    /// <summary>Stops the broker and deletes its data directory.</summary>
    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync(TimeSpan.FromSeconds(10));
        }
        catch (OperationCanceledException)
        {
            await KillAsync();
        }

        _process?.Dispose();
        try
        {
            Directory.Delete(DataDir, recursive: true);
            File.Delete(Path.Combine(DataDir, "..", Path.GetFileName(DataDir) + ".properties"));
        }
        catch (IOException)
        {
        }
    }

    /// <summary>The moldau executable built beside the tests (Moldau.Server is a project reference).</summary>
    public static string ServerExecutable()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "moldau");
        return File.Exists(path) ? path : throw new FileNotFoundException("moldau executable not found beside the tests", path);
    }

    /// <summary>A port nothing listens on right now.</summary>
    public static int FreePort()
    {
        // Ports handed out once each per test process, below the kernel's ephemeral range
        // (32768-60999): a port the kernel picked for bind(0) could be picked again for another
        // test, or as a client connection's local port, before the broker binds it, and the
        // readiness probe would then reach someone else's socket.
        while (true)
        {
            var next = Interlocked.Increment(ref s_nextPort);
            var port = FirstPort + (int)((uint)next % PortCount);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // in use by someone else: the next one
            }
        }
    }

    private const int FirstPort = 20000;
    private const int PortCount = 12000;

    // Started at an offset of the test process's id, so two test processes at once start apart.
    private static int s_nextPort = Environment.ProcessId * 997 % PortCount;
}
