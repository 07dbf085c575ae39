using System.Text.Json;

namespace Moldau.IntegrationTests.Infrastructure;

/// <summary>Runs a client script from tests/clients that prints one JSON object of named checks and facts, and requires every check to hold.</summary>
public static class ClientMatrix
{
    /// <summary>tests/clients in the source tree.</summary>
    public static string ClientsDir() => ClientsDirBesideThisFile();

    private static string ClientsDirBesideThisFile([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "..", "clients"));

    /// <summary>
    /// Runs <paramref name="program"/> on <paramref name="script"/> (relative to tests/clients) with the
    /// bootstrap servers and a fresh name prefix; fails with the script's output unless it exits 0 and
    /// reports at least <paramref name="minimumChecks"/> checks, all true.
    /// </summary>
    public static async Task AssertAsync(string program, string script, string bootstrap, int minimumChecks, TimeSpan timeout)
    {
        var prefix = Path.GetFileNameWithoutExtension(script).Replace('_', '-') + "-" + Guid.NewGuid().ToString("N")[..6];
        var result = await ExternalTool.RunAsync(program, [Path.Combine(ClientsDirBesideThisFile(), script), bootstrap, prefix], timeout: timeout);
        Assert.True(result.ExitCode == 0, $"{script} failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        var report = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        var failed = report.GetProperty("checks").EnumerateObject().Where(c => !c.Value.GetBoolean()).Select(c => c.Name).ToList();
        Assert.True(failed.Count == 0, $"{script}: failed checks {string.Join(", ", failed)}; facts {report.GetProperty("facts")}");
        Assert.True(report.GetProperty("checks").EnumerateObject().Count() >= minimumChecks, $"{script} reported too few checks: {report}");
    }
}
