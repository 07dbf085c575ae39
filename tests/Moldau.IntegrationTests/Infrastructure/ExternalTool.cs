using System.Diagnostics;

namespace Moldau.IntegrationTests.Infrastructure;

/// <summary>Runs a real client program (kcat, python3, node) and captures what it prints.</summary>
public static class ExternalTool
{
    /// <summary>The result of a run.</summary>
    /// <param name="ExitCode">The exit code.</param>
    /// <param name="Stdout">Standard output.</param>
    /// <param name="Stderr">Standard error.</param>
    public sealed record Result(int ExitCode, string Stdout, string Stderr);

    /// <summary>Runs <paramref name="program"/> with <paramref name="args"/>, feeding <paramref name="stdin"/>; fails the test after <paramref name="timeout"/>.</summary>
    public static async Task<Result> RunAsync(string program, IEnumerable<string> args, string? stdin = null, TimeSpan? timeout = null, IReadOnlyDictionary<string, string>? environment = null)
    {
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            start.Environment[k] = v;
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await process.StandardInput.WriteAsync(stdin);
        }

        process.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{program} {string.Join(' ', args)} did not finish; stderr: {await stderr}");
        }

        return new Result(process.ExitCode, await stdout, await stderr);
    }

    /// <summary>The full path of <paramref name="program"/> on PATH, or null.</summary>
    public static string? Find(string program) =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty).Split(':')
            .Select(d => Path.Combine(d, program))
            .FirstOrDefault(File.Exists);
}
