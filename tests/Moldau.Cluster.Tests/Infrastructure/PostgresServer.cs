using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Moldau.Cluster.Tests.Infrastructure;

/// <summary>
/// A private PostgreSQL server for one test run, from Debian's <c>postgresql</c> package: initdb into
/// a temporary directory, the postmaster started as a child of the test process on a free port of
/// 127.0.0.1 (its unix socket in the same directory), trust authentication, stopped by its PID
/// (SIGQUIT, immediate shutdown) and the directory removed afterwards. PostgreSQL refuses to run as
/// root, so when the tests run as root initdb runs through <c>runuser</c> and the postmaster through
/// <c>setpriv</c> as the <c>postgres</c> user the package creates (or <c>nobody</c>).
/// Each test takes a fresh database of its own (<see cref="CreateDatabaseAsync"/>).
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private const string Superuser = "moldau";
    private string? _dir;
    private string? _runAs;
    private readonly System.Text.StringBuilder _log = new();
    private Process? _postmaster;
    private int _databases;

    /// <summary>The TCP port the server listens on (127.0.0.1).</summary>
    public int Port { get; private set; }

    /// <summary>The directory of the binaries (initdb, postgres).</summary>
    public string BinDirectory { get; private set; } = string.Empty;

    /// <summary>A connection string to database <paramref name="database"/>.</summary>
    public string ConnectionString(string database = "postgres") =>
        new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Port,
            Username = Superuser,
            Database = database,
            // A pooled connection to a database a test has dropped is of no use to the next test.
            Pooling = true,
            MaxPoolSize = 40,
            Timeout = 30,
            CommandTimeout = 60,
        }.ConnectionString;

    /// <inheritdoc/>
    public async Task InitializeAsync()
    {
        BinDirectory = FindBinDirectory();
        _runAs = Environment.IsPrivilegedProcess ? UnprivilegedUser() : null;
        _dir = Directory.CreateTempSubdirectory("moldau-pg-").FullName;
        var data = Path.Combine(_dir, "data");
        if (_runAs is not null)
        {
            await RunAsync("chown", [_runAs, _dir], asServerUser: false);
        }

        await RunAsync(Path.Combine(BinDirectory, "initdb"),
            ["-D", data, "-A", "trust", "-U", Superuser, "-E", "UTF8", "--locale=C", "--no-sync"], asServerUser: true);

        // The postmaster is this process's own child (setpriv execs, it does not fork), so it is
        // stopped by its PID and reaped here; pg_ctl would daemonize it instead.
        // fsync=off: a test run survives no power failure anyway; synchronous_commit stays on, so a
        // server killed with SIGQUIT/SIGKILL still keeps every committed transaction.
        for (var attempt = 0; ; attempt++)
        {
            Port = FreePort();
            if (await TryStartPostmasterAsync(data) || attempt >= 2)
            {
                break;
            }
        }

        if (_postmaster is null)
        {
            throw new InvalidOperationException($"postgres did not start:\n{Log}");
        }

        AppDomain.CurrentDomain.ProcessExit += OnProcessExit;
    }

    /// <summary>What the server printed so far.</summary>
    public string Log
    {
        get
        {
            lock (_log)
            {
                return _log.ToString();
            }
        }
    }

    private async Task<bool> TryStartPostmasterAsync(string data)
    {
        var start = new ProcessStartInfo(_runAs is not null ? "setpriv" : Path.Combine(BinDirectory, "postgres"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir!,
        };
        if (_runAs is not null)
        {
            foreach (var a in new[] { $"--reuid={_runAs}", $"--regid={_runAs}", "--init-groups", "--", Path.Combine(BinDirectory, "postgres") })
            {
                start.ArgumentList.Add(a);
            }
        }

        foreach (var a in new[]
        {
            "-D", data, "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-k", _dir!,
            "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200",
        })
        {
            start.ArgumentList.Add(a);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start postgres");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited)
            {
                await process.WaitForExitAsync();
                process.Dispose();
                return false;
            }

            try
            {
                await using var connection = new NpgsqlConnection(ConnectionString() + ";Pooling=false");
                await connection.OpenAsync();
                _postmaster = process;
                return true;
            }
            catch (NpgsqlException)
            {
                await Task.Delay(100);
            }
        }

        process.Kill();
        await process.WaitForExitAsync();
        process.Dispose();
        return false;
    }

    /// <summary>
    /// Stops the server as <c>pg_ctl stop -m fast</c> does (SIGINT to the postmaster, by its PID):
    /// sessions are ended, open transactions rolled back, a checkpoint written. <see
    /// cref="StartAgainAsync"/> starts it on the same data directory and port.
    /// </summary>
    public async Task StopFastAsync()
    {
        var postmaster = _postmaster ?? throw new InvalidOperationException("not running");
        await RunAsync("kill", ["-s", "INT", postmaster.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], asServerUser: false);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await postmaster.WaitForExitAsync(cts.Token);
        postmaster.Dispose();
        _postmaster = null;
    }

    /// <summary>Starts the server stopped by <see cref="StopFastAsync"/> again, same directory and port.</summary>
    public async Task StartAgainAsync()
    {
        if (_postmaster is not null)
        {
            throw new InvalidOperationException("already running");
        }

        // The port may still be in TIME_WAIT from the client side only; the postmaster sets
        // SO_REUSEADDR, so one attempt is normally enough.
        for (var attempt = 0; attempt < 3; attempt++)
        {
            if (await TryStartPostmasterAsync(Path.Combine(_dir!, "data")))
            {
                return;
            }
        }

        throw new InvalidOperationException($"postgres did not start again on port {Port}:\n{Log}");
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_log)
        {
            _log.AppendLine(line);
        }
    }

    /// <summary>Creates a fresh, empty database and returns a handle that drops it when disposed.</summary>
    public async Task<TestDatabase> CreateDatabaseAsync()
    {
        var name = $"test_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}";
        await using (var connection = new NpgsqlConnection(ConnectionString()))
        {
            await connection.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await create.ExecuteNonQueryAsync();
        }

        return new TestDatabase(this, name, ConnectionString(name));
    }

    internal async Task DropDatabaseAsync(string name)
    {
        await using var connection = new NpgsqlConnection(ConnectionString());
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)", connection);
        await drop.ExecuteNonQueryAsync();
    }

    /// <inheritdoc/>
    public async Task DisposeAsync()
    {
        AppDomain.CurrentDomain.ProcessExit -= OnProcessExit;
        NpgsqlConnection.ClearAllPools();
        await StopAsync();
    }

    private void OnProcessExit(object? sender, EventArgs e) => StopAsync().GetAwaiter().GetResult();

    private async Task StopAsync()
    {
        if (_dir is null)
        {
            return;
        }

        if (_postmaster is not null)
        {
            // SIGQUIT is PostgreSQL's immediate shutdown: the postmaster stops its children and exits.
            await RunAsync("kill", ["-s", "QUIT", _postmaster.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)], asServerUser: false, throwOnFailure: false);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            try
            {
                await _postmaster.WaitForExitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                _postmaster.Kill();
                await _postmaster.WaitForExitAsync();
            }

            _postmaster.Dispose();
            _postmaster = null;
        }

        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }

        _dir = null;
    }

    private async Task<bool> RunAsync(string program, string[] args, bool asServerUser, bool throwOnFailure = true)
    {
        var start = new ProcessStartInfo(asServerUser && _runAs is not null ? "runuser" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _dir ?? Path.GetTempPath(),
        };
        if (asServerUser && _runAs is not null)
        {
            foreach (var a in new[] { "-u", _runAs, "--", program })
            {
                start.ArgumentList.Add(a);
            }
        }

        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await process.WaitForExitAsync(cts.Token);
        if (process.ExitCode == 0)
        {
            return true;
        }

        if (throwOnFailure)
        {
            throw new InvalidOperationException($"{program} {string.Join(' ', args)} exited {process.ExitCode}: {await stdout}{await stderr}");
        }

        return false;
    }

    private static string FindBinDirectory()
    {
        const string root = "/usr/lib/postgresql";
        var bin = Directory.Exists(root)
            ? Directory.GetDirectories(root)
                .Select(d => (Dir: Path.Combine(d, "bin"), Version: int.TryParse(Path.GetFileName(d), out var v) ? v : 0))
                .Where(x => File.Exists(Path.Combine(x.Dir, "postgres")) && File.Exists(Path.Combine(x.Dir, "initdb")))
                .OrderByDescending(x => x.Version)
                .Select(x => x.Dir)
                .FirstOrDefault()
            : null;
        return bin ?? throw new InvalidOperationException(
            "PostgreSQL not found under /usr/lib/postgresql/<version>/bin: install Debian's postgresql package (scripts/test.sh does)");
    }

    private static string UnprivilegedUser()
    {
        var passwd = File.ReadAllLines("/etc/passwd").Select(l => l.Split(':')[0]).ToHashSet();
        return passwd.Contains("postgres") ? "postgres" : "nobody";
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A database of its own for one test, dropped when disposed.</summary>
public sealed class TestDatabase(PostgresServer server, string name, string connectionString) : IAsyncDisposable
{
    /// <summary>The database's name.</summary>
    public string Name { get; } = name;

    /// <summary>A connection string to it.</summary>
    public string ConnectionString { get; } = connectionString;

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await server.DropDatabaseAsync(Name);
}

/// <summary>Tests that share the run's PostgreSQL server (each with its own database).</summary>
[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    /// <summary>The collection's name.</summary>
    public const string Name = "postgres";
}
