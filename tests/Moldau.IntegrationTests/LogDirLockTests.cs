using System.Diagnostics;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// Kafka's <c>.lock</c> in every log dir: a second broker on a live log dir (another Moldau, or a
/// Kafka broker holding the lock as Kafka takes it) exits with code 4 and one line naming the
/// directory, and writes nothing there.
/// </summary>
public sealed class LogDirLockTests
{
    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    [Fact]
    public async Task SecondBrokerOnALiveLogDirExitsAndWritesNothing()
    {
        await using var first = await BrokerProcess.StartAsync();
        await WaitUntilStartedAsync(first);
        var before = Listing(first.DataDir);

        var second = await RunSecondBrokerAsync(first.DataDir);

        Assert.Equal(4, second.ExitCode);
        var lines = (second.Stdout + second.Stderr).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains(lines, l => l.Contains($"log dir {first.DataDir} is in use by another process", StringComparison.Ordinal));
        Assert.Equal(before, Listing(first.DataDir));
        Assert.False(File.Exists(Path.Combine(first.DataDir, ".kafka_cleanshutdown")));

        // The first broker is untouched, stops cleanly, and a broker after it takes the dir.
        Assert.Equal(0, await first.StopAsync());
        Assert.True(File.Exists(Path.Combine(first.DataDir, ".kafka_cleanshutdown")));
        await first.RestartAsync();
    }

    [Fact]
    public async Task KafkasLockAndMoldausExcludeEachOther()
    {
        var java = ExternalTool.Find("java");
        Assert.True(java is not null, "java is required (Kafka's lock is taken with FileChannel.tryLock)");
        var dir = BrokerProcess.NewDataDir();
        try
        {
            // A JVM holds the lock as a Kafka broker does: Moldau refuses the dir.
            using (var holder = StartLockHolder(java, dir, out var answer))
            {
                Assert.Equal("locked", answer);
                var refused = await RunSecondBrokerAsync(dir);
                Assert.Equal(4, refused.ExitCode);
                Assert.Contains($"log dir {dir} is in use by another process", refused.Stderr, StringComparison.Ordinal);
                Assert.False(File.Exists(Path.Combine(dir, "meta.properties")));
                holder.StandardInput.Close();
                await holder.WaitForExitAsync();
            }

            // Moldau holds it: the JVM's tryLock fails, as Kafka's start would.
            await using var broker = await BrokerProcess.StartAsync(dir);
            using (var holder = StartLockHolder(java, dir, out var answer))
            {
                Assert.Equal("busy", answer);
                holder.StandardInput.Close();
                await holder.WaitForExitAsync();
            }
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    // The port accepts as soon as it is bound, before the log dirs are opened.
    private static async Task WaitUntilStartedAsync(BrokerProcess broker)
    {
        for (var i = 0; i < 1500 && !broker.Output.Contains("Moldau started", StringComparison.Ordinal); i++)
        {
            await Task.Delay(20);
        }
    }

    private static Process StartLockHolder(string java, string dir, out string? answer)
    {
        var start = new ProcessStartInfo(java)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(Path.Combine(ClientsDir(), "java", "HoldKafkaLock.java"));
        start.ArgumentList.Add(dir);
        var process = Process.Start(start)!;
        answer = process.StandardOutput.ReadLine();
        return process;
    }

    private static async Task<ExternalTool.Result> RunSecondBrokerAsync(string dataDir)
    {
        var config = Path.Combine(Path.GetTempPath(), "moldau-second-" + Guid.NewGuid().ToString("N")[..12] + ".properties");
        await File.WriteAllLinesAsync(config, ["node.id=1", $"listeners=PLAINTEXT://127.0.0.1:{BrokerProcess.FreePort()}", $"log.dirs={dataDir}"]);
        try
        {
            return await ExternalTool.RunAsync(BrokerProcess.ServerExecutable(), [config], timeout: TimeSpan.FromSeconds(30));
        }
        finally
        {
            File.Delete(config);
        }
    }

    private static string Listing(string dir) =>
        string.Join('\n', Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .Order(StringComparer.Ordinal)
            .Select(p => File.Exists(p) ? $"{p} {new FileInfo(p).Length} {File.GetLastWriteTimeUtc(p):O}" : p));
}
