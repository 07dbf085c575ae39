using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;
using Moldau.Cluster.ObjectStore;

namespace Moldau.Cluster.Tests.Infrastructure;

/// <summary>
/// A real Ceph RADOS Gateway (Debian bookworm's radosgw, ceph-mon, ceph-osd: Ceph 16.2 Pacific) for
/// the tests: one monitor, one memstore OSD (the data lives in the OSD's memory), pools of size 1,
/// no cephx, and RGW's beast frontend on 127.0.0.1 on a free port. Every config, data, run and log
/// directory lies in one temporary directory; no systemd. It is stopped by the process ids it
/// started (never by name) and its directory removed.
/// </summary>
/// <remarks>
/// Two settings beyond the obvious ones are needed: <c>ms mon client mode = crc</c>, because
/// radosgw asks for the "secure" messenger mode towards the monitor by default and that mode cannot
/// be had with <c>auth = none</c> (the connection fails with "get_initial_auth_request returned
/// -13" in the RGW log, forever); and the OSD's data directory must exist before
/// <c>ceph-osd --mkfs</c> (memstore writes its fsid file there, else it asserts).
/// </remarks>
public sealed class CephRgwServer : IAsyncLifetime
{
    /// <summary>The S3 access key of the user every test uses.</summary>
    public const string AccessKey = "MOLDAUTESTACCESSKEY0";

    /// <summary>The S3 secret key of that user.</summary>
    public const string SecretKey = "moldau-test-secret-key-0000000000000000";

    /// <summary>RGW's default zonegroup is "default"; any region name signs correctly against it.</summary>
    public const string Region = "us-east-1";

    private readonly List<Daemon> _daemons = [];
    private string? _dir;

    /// <summary>The S3 endpoint, <c>http://127.0.0.1:port</c>.</summary>
    public string Endpoint { get; private set; } = "";

    /// <summary>The temporary directory holding ceph.conf, the daemons' data, run and log files.</summary>
    public string Directory => _dir ?? throw new InvalidOperationException("not started");

    /// <summary>How long the cluster took from the first command until RGW answered HTTP.</summary>
    public TimeSpan StartTime { get; private set; }

    private int _gateways;

    /// <summary>The process ids of the monitor, the OSD and RGW, in that order.</summary>
    public IReadOnlyList<int> Pids => _daemons.Select(d => d.Process.Id).ToList();

    /// <inheritdoc />
    public async Task InitializeAsync()
    {
        var clock = Stopwatch.StartNew();
        _dir = Path.Combine(Path.GetTempPath(), "moldau-rgw-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            await StartClusterAsync(_dir);
        }
        catch
        {
            await DisposeAsync();
            throw;
        }

        StartTime = clock.Elapsed;
    }

    private async Task StartClusterAsync(string dir)
    {
        foreach (var sub in new[] { "mon", "osd", "run", "log", "rgw" })
        {
            System.IO.Directory.CreateDirectory(Path.Combine(dir, sub));
        }

        var fsid = Guid.NewGuid().ToString();
        var monPort = FreePort();
        var rgwPort = FreePort();
        var conf = Path.Combine(dir, "ceph.conf");
        File.WriteAllText(conf, CephConf(dir, fsid, monPort));

        await RunAsync("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", $"[v2:127.0.0.1:{monPort}]", Path.Combine(dir, "monmap")]);
        await RunAsync("ceph-mon", ["-c", conf, "--mkfs", "-i", "a", "--monmap", Path.Combine(dir, "monmap")]);
        Start("mon", "ceph-mon", ["-c", conf, "-f", "-i", "a"]);

        // The monitor assigns the OSD its id (0); the CLI waits for the monitor to answer.
        var osdUuid = Guid.NewGuid().ToString();
        var osdId = (await RunAsync("ceph", ["-c", conf, "--connect-timeout", "60", "osd", "new", osdUuid])).Trim();
        System.IO.Directory.CreateDirectory(Path.Combine(dir, "osd", "osd." + osdId));
        await RunAsync("ceph-osd", ["-c", conf, "-i", osdId, "--mkfs", "--osd-uuid", osdUuid]);
        Start("osd", "ceph-osd", ["-c", conf, "-f", "-i", osdId]);

        Start("rgw", "radosgw", ["-c", conf, "-f", "-n", "client.rgw.0", "--rgw-frontends", $"beast endpoint=127.0.0.1:{rgwPort} tcp_nodelay=1"]);
        Endpoint = $"http://127.0.0.1:{rgwPort}";

        // RGW answers only once it has created its pools, which needs the OSD up.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (true)
        {
            foreach (var daemon in _daemons)
            {
                if (daemon.Process.HasExited)
                {
                    throw new InvalidOperationException($"{daemon.Name} exited with {daemon.Process.ExitCode} while the cluster started:\n{Logs()}");
                }
            }

            try
            {
                using var response = await http.GetAsync(Endpoint + "/");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    break;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException)
            {
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"RGW did not answer on {Endpoint} within 120 s:\n{Logs()}");
            }

            await Task.Delay(100);
        }

        await RunAsync("radosgw-admin", ["-c", conf, "user", "create", "--uid=moldau", "--display-name=moldau", "--access-key=" + AccessKey, "--secret-key=" + SecretKey]);
    }

    /// <summary>
    /// Starts another RADOS Gateway over the same cluster (same pools, users and buckets) on a port
    /// of its own, for a test that stops and starts a gateway without disturbing the shared one.
    /// </summary>
    public async Task<RgwGateway> StartGatewayAsync()
    {
        var gateway = new RgwGateway(Path.Combine(Directory, "ceph.conf"), $"client.rgw.{Interlocked.Increment(ref _gateways)}", FreePort());
        await gateway.StartAsync();
        return gateway;
    }

    /// <summary>
    /// ceph.conf for the one-machine cluster: no cephx, pools of one replica, a memstore OSD, every
    /// path under <paramref name="dir"/>, and the monitor's disk-space shutdown off (a test machine's
    /// disk may be fuller than 5 %, which would stop the monitor).
    /// </summary>
    internal static string CephConf(string dir, string fsid, int monPort) => $"""
        [global]
        fsid = {fsid}
        mon host = v2:127.0.0.1:{monPort}
        public addr = 127.0.0.1
        auth cluster required = none
        auth service required = none
        auth client required = none
        ms mon client mode = crc
        osd pool default size = 1
        osd pool default min size = 1
        osd pool default pg autoscale mode = off
        mon allow pool size one = true
        mon warn on pool no redundancy = false
        mon data avail crit = 0
        mon data avail warn = 0
        osd crush chooseleaf type = 0
        osd objectstore = memstore
        memstore device bytes = 2147483648
        run dir = {dir}/run
        admin socket = {dir}/run/$name.asok
        pid file = {dir}/run/$name.pid
        log file = {dir}/log/$name.log
        mon data = {dir}/mon/$name
        osd data = {dir}/osd/$name
        keyring = {dir}/keyring
        rgw data = {dir}/rgw

        """; // ceph's parser wants the last line ended

    /// <summary>An S3 client for the test user, path-style, as Moldau's store makes it.</summary>
    public IAmazonS3 NewClient() => S3ObjectStore.CreateClient(Options(""));

    /// <summary>Options for an <see cref="S3ObjectStore"/> over <paramref name="bucket"/>.</summary>
    public S3ObjectStoreOptions Options(string bucket) => new()
    {
        Endpoint = Endpoint,
        Region = Region,
        Bucket = bucket,
        AccessKey = AccessKey,
        SecretKey = SecretKey,
        PathStyle = true,
    };

    /// <summary>Creates a new, empty bucket with a unique name and returns its name.</summary>
    public async Task<string> CreateBucketAsync()
    {
        var name = "t-" + Guid.NewGuid().ToString("N")[..20];
        using var client = NewClient();
        await client.PutBucketAsync(new PutBucketRequest { BucketName = name });
        return name;
    }

    /// <summary>The resident set size of each daemon in KiB (from /proc), by name.</summary>
    public IReadOnlyDictionary<string, long> ResidentKiB()
    {
        var result = new Dictionary<string, long>();
        foreach (var daemon in _daemons)
        {
            var status = File.ReadAllLines($"/proc/{daemon.Process.Id}/status");
            var line = status.First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            result[daemon.Name] = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
        }

        return result;
    }

    /// <inheritdoc />
    public async Task DisposeAsync()
    {
        // The data is thrown away, so no clean shutdown: SIGKILL, RGW first, by the ids we started.
        for (var i = _daemons.Count - 1; i >= 0; i--)
        {
            var process = _daemons[i].Process;
            try
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }

                await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (InvalidOperationException)
            {
            }
            catch (TimeoutException)
            {
            }

            process.Dispose();
        }

        _daemons.Clear();
        if (_dir != null && System.IO.Directory.Exists(_dir))
        {
            System.IO.Directory.Delete(_dir, recursive: true);
        }
    }

    private void Start(string name, string file, IReadOnlyList<string> arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + file);
        var daemon = new Daemon(name, process);
        process.OutputDataReceived += (_, e) => daemon.Append(e.Data);
        process.ErrorDataReceived += (_, e) => daemon.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _daemons.Add(daemon);
    }

    private async Task<string> RunAsync(string file, IReadOnlyList<string> arguments)
    {
        var info = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException("could not start " + file);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{file} is not installed (scripts/test.sh installs radosgw, ceph-mon and ceph-osd): {e.Message}", e);
        }

        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
            try
            {
                await process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                process.Kill();
                throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish within 90 s:\n{Logs()}");
            }

            if (process.ExitCode != 0)
            {
                throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} failed ({process.ExitCode}):\n{await stdout}{await stderr}\n{Logs()}");
            }

            return await stdout;
        }
    }

    /// <summary>The last lines of every daemon's output and log file, for failure messages.</summary>
    private string Logs()
    {
        var text = new StringBuilder();
        foreach (var daemon in _daemons)
        {
            text.Append("--- ").Append(daemon.Name).AppendLine(" output:").AppendLine(daemon.Tail());
        }

        if (_dir != null && System.IO.Directory.Exists(Path.Combine(_dir, "log")))
        {
            foreach (var file in System.IO.Directory.GetFiles(Path.Combine(_dir, "log")))
            {
                var lines = File.ReadAllLines(file);
                text.Append("--- ").Append(Path.GetFileName(file)).AppendLine(":");
                foreach (var line in lines.Skip(Math.Max(0, lines.Length - 15)))
                {
                    text.AppendLine(line);
                }
            }
        }

        return text.ToString();
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    private sealed class Daemon(string name, Process process)
    {
        private readonly Queue<string> _lines = new();

        public string Name { get; } = name;

        public Process Process { get; } = process;

        public void Append(string? line)
        {
            if (line == null)
            {
                return;
            }

            lock (_lines)
            {
                _lines.Enqueue(line);
                if (_lines.Count > 50)
                {
                    _lines.Dequeue();
                }
            }
        }

        public string Tail()
        {
            lock (_lines)
            {
                return string.Join('\n', _lines);
            }
        }
    }
}

/// <summary>
/// The tests that share one RGW cluster for the whole run (a bucket each), and a PostgreSQL of
/// their own for those that need both (ThreeBrokerTests; a database each).
/// </summary>
[CollectionDefinition(Name)]
public sealed class CephRgwCollection : ICollectionFixture<CephRgwServer>, ICollectionFixture<PostgresServer>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "ceph-rgw";
}
