using System.Reflection;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// tools/Moldau.GroupBench (moldau-groupbench) run as its own process against a broker of its own:
/// a few hundred classic members, each on its own connection, join one group and one leaves.
/// Only correctness is checked here (the times go in docs/performance.md).
/// </summary>
public sealed class GroupBenchTests
{
    private const int Members = 300;

    // Long enough that every member's JoinGroup arrives within the initial delay even on a busy
    // machine, so the first rebalance has all of them in one generation.
    private const int InitialDelayMs = 10_000;

    [Fact]
    public async Task Three_hundred_members_join_one_generation_all_assigned_and_one_leaving_moves_the_rest_to_the_next()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["num.partitions"] = "1", ["group.initial.rebalance.delay.ms"] = InitialDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture) });

        var result = await ExternalTool.RunAsync(
            "dotnet",
            [ToolDll(), "--bootstrap", broker.BootstrapServers, "--members", Members.ToString(System.Globalization.CultureInfo.InvariantCulture), "--initial-delay-ms", InitialDelayMs.ToString(System.Globalization.CultureInfo.InvariantCulture), "--heartbeat-ms", "500"],
            timeout: TimeSpan.FromMinutes(2));

        var output = $"exit {result.ExitCode}\nstdout:\n{result.Stdout}\nstderr:\n{result.Stderr}";
        Assert.True(result.ExitCode == 0, output);
        Assert.Contains($"join: all {Members} joined generation 1 ", result.Stdout);
        Assert.Contains($"leave: {Members - 1} members in generation 2 with their assignments", result.Stdout);
        Assert.Contains("result: ok", result.Stdout);
        Assert.Equal(string.Empty, result.Stderr.Trim());
    }

    [Fact]
    public async Task Fails_with_a_usage_message_on_bad_arguments()
    {
        var result = await ExternalTool.RunAsync("dotnet", [ToolDll(), "--members", "1"], timeout: TimeSpan.FromMinutes(1));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("usage: moldau-groupbench", result.Stderr);
    }

    private static string ToolDll()
    {
        var path = typeof(GroupBenchTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "MoldauGroupBenchDll").Value;
        return File.Exists(path) ? path : throw new FileNotFoundException("moldau-groupbench was not built", path);
    }
}
