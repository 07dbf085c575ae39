using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;

namespace Moldau.Cluster.Tests.Infrastructure;

/// <summary>
/// One radosgw process over the run's Ceph cluster (<see cref="CephRgwServer.StartGatewayAsync"/>),
/// on a fixed port so it can be stopped (SIGKILL by its process id) and started again at the same
/// endpoint while brokers keep using it.
/// </summary>
public sealed class RgwGateway : IAsyncDisposable
{
    private readonly string _conf;
    private readonly string _name;
    private readonly int _port;
    private readonly StringBuilder _output = new();
    private Process? _process;

    internal RgwGateway(string conf, string name, int port)
    {
        _conf = conf;
        _name = name;
        _port = port;
    }

    /// <summary>http://127.0.0.1:port.</summary>
    public string Endpoint => $"http://127.0.0.1:{_port}";

    /// <summary>The running process's id, or null while stopped.</summary>
    public int? Pid => _process?.Id;

    /// <summary>Starts radosgw and waits until it answers GET / with 200 (the pools already exist).</summary>
    public async Task StartAsync()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException("already running");
        }

        var info = new ProcessStartInfo("radosgw") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-c", _conf, "-f", "-n", _name, "--rgw-frontends", $"beast endpoint=127.0.0.1:{_port} tcp_nodelay=1" })
        {
            info.ArgumentList.Add(a);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start radosgw");
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        _process = process;

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"radosgw {_name} exited with {process.ExitCode}:\n{Output}");
            }

            try
            {
                using var response = await http.GetAsync(Endpoint + "/");
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
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
                throw new TimeoutException($"radosgw {_name} did not answer on {Endpoint} within 60 s:\n{Output}");
            }

            await Task.Delay(100);
        }
    }

    /// <summary>Stops the gateway: SIGKILL by its process id (connections are reset, nothing answers).</summary>
    public async Task StopAsync()
    {
        if (_process is null)
        {
            return;
        }

        if (!_process.HasExited)
        {
            using var kill = Process.Start("kill", ["-KILL", _process.Id.ToString(CultureInfo.InvariantCulture)]);
            await kill!.WaitForExitAsync();
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
        _process = null;
    }

    /// <summary>What the gateway printed.</summary>
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

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync();
}
