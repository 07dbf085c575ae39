using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Moldau.Server.Tests;

/// <summary>The built executable: exit codes and messages at start-up.</summary>
public sealed class ProcessTests
{
    private static async Task<(int ExitCode, string Stderr)> RunAsync(params string[] args)
    {
        var start = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "moldau"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var p = Process.Start(start)!;
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stderr);
    }

    [Fact]
    public async Task AMalformedValueExitsNonZeroNamingKeyAndValue()
    {
        var (code, stderr) = await RunAsync("--override", "node.id=abc", "--override", "log.dirs=/tmp/never-used");
        Assert.NotEqual(0, code);
        Assert.Contains("node.id", stderr, StringComparison.Ordinal);
        Assert.Contains("abc", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnSslListenerExitsNonZero()
    {
        var (code, stderr) = await RunAsync("--override", "listeners=SSL://127.0.0.1:0");
        Assert.NotEqual(0, code);
        Assert.Contains("SSL", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AMissingPropertiesFileExitsNonZero()
    {
        var (code, stderr) = await RunAsync("/no/such/server.properties");
        Assert.NotEqual(0, code);
        Assert.Contains("/no/such/server.properties", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASecondBrokerOnABusyPortExitsWithCode3NamingThePort()
    {
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }

        var dirs = new[] { Directory.CreateTempSubdirectory("moldau-port-a-"), Directory.CreateTempSubdirectory("moldau-port-b-") };
        var first = new ProcessStartInfo(Path.Combine(AppContext.BaseDirectory, "moldau"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var a in new[] { "--override", $"listeners=PLAINTEXT://127.0.0.1:{port}", "--override", $"log.dirs={dirs[0].FullName}" })
        {
            first.ArgumentList.Add(a);
        }

        using var running = Process.Start(first)!;
        try
        {
            // The first broker is up once it says so (the log goes to stderr).
            using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60)))
            {
                while (await running.StandardError.ReadLineAsync(cts.Token) is { } line && !line.Contains("Moldau started", StringComparison.Ordinal))
                {
                }
            }

            _ = running.StandardOutput.ReadToEndAsync();
            _ = running.StandardError.ReadToEndAsync();
            var (code, stderr) = await RunAsync("--override", $"listeners=PLAINTEXT://127.0.0.1:{port}", "--override", $"log.dirs={dirs[1].FullName}");
            Assert.Equal(3, code);
            Assert.Contains($"port {port} is already in use", stderr, StringComparison.Ordinal);
            Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.False(running.HasExited);
        }
        finally
        {
            running.Kill();
            await running.WaitForExitAsync();
            foreach (var d in dirs)
            {
                d.Delete(recursive: true);
            }
        }
    }
}
