using System.Diagnostics;

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
}
