using System.Diagnostics;

namespace Moldau.Server.Tests;

/// <summary>
/// your_program.sh builds only when a source is newer than the binary: files a build writes under
/// obj/ and bin/ (the test suite's builds too) must not count. Run on a copy of the script in a
/// scratch tree, with a stand-in binary and a stand-in <c>dotnet</c> that only say they ran.
/// </summary>
public sealed class StartScriptTests : IDisposable
{
    private readonly DirectoryInfo _root = Directory.CreateTempSubdirectory("moldau-script-");

    public StartScriptTests()
    {
        var repo = new DirectoryInfo(AppContext.BaseDirectory);
        while (repo is not null && !File.Exists(Path.Combine(repo.FullName, "your_program.sh")))
        {
            repo = repo.Parent;
        }

        File.Copy(Path.Combine(repo!.FullName, "your_program.sh"), Path.Combine(_root.FullName, "your_program.sh"));
        Write("Directory.Build.props", "<Project />");
        Write("Directory.Packages.props", "<Project />");
        Write("src/Moldau.Server/Program.cs", "// source");
        Write("src/Moldau.Server/Moldau.Server.csproj", "<Project />");
        Write(".build/moldau/moldau", "#!/bin/sh\necho started\n", executable: true);
        Write("fake-bin/dotnet", "#!/bin/sh\necho fake dotnet build >&2\n", executable: true);

        // Sources older than the binary: an up-to-date build.
        var old = DateTime.UtcNow.AddHours(-2);
        foreach (var f in new[] { "Directory.Build.props", "Directory.Packages.props", "src/Moldau.Server/Program.cs", "src/Moldau.Server/Moldau.Server.csproj" })
        {
            File.SetLastWriteTimeUtc(Path.Combine(_root.FullName, f), old);
        }

        File.SetLastWriteTimeUtc(Path.Combine(_root.FullName, ".build/moldau/moldau"), DateTime.UtcNow.AddHours(-1));
    }

    public void Dispose() => _root.Delete(recursive: true);

    private void Write(string relative, string text, bool executable = false)
    {
        var path = Path.Combine(_root.FullName, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        if (executable && !OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private async Task<(string Stdout, string Stderr)> StartAsync()
    {
        var start = new ProcessStartInfo("bash")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        start.ArgumentList.Add(Path.Combine(_root.FullName, "your_program.sh"));
        start.Environment["PATH"] = Path.Combine(_root.FullName, "fake-bin") + ":" + Environment.GetEnvironmentVariable("PATH");
        using var p = Process.Start(start)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await p.WaitForExitAsync(cts.Token);
        Assert.Equal(0, p.ExitCode);
        return (await stdout, await stderr);
    }

    [Fact]
    public async Task FilesABuildWritesUnderObjAndBinDoNotTriggerARebuild()
    {
        // What any build leaves behind, newer than the binary.
        Write("src/Moldau.Server/obj/Release/net10.0/Moldau.Server.AssemblyInfo.cs", "// generated");
        Write("src/Moldau.Server/obj/Moldau.Server.csproj.nuget.g.props", "<Project />");
        Write("src/Moldau.Server/bin/Release/net10.0/Generated.cs", "// copied");

        var (stdout, stderr) = await StartAsync();
        Assert.Contains("started", stdout, StringComparison.Ordinal);
        Assert.DoesNotContain("building", stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AChangedSourceRebuildsOnce()
    {
        File.SetLastWriteTimeUtc(Path.Combine(_root.FullName, "src/Moldau.Server/Program.cs"), DateTime.UtcNow);

        var (stdout, stderr) = await StartAsync();
        Assert.Contains("building", stderr, StringComparison.Ordinal);
        Assert.Contains("started", stdout, StringComparison.Ordinal);

        (stdout, stderr) = await StartAsync();
        Assert.DoesNotContain("building", stderr, StringComparison.Ordinal);
        Assert.Contains("started", stdout, StringComparison.Ordinal);
    }
}
