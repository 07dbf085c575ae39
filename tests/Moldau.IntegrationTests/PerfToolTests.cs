using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>tools/Moldau.Perf (moldau-perf) run as its own process against a Moldau process.</summary>
[Collection(BrokerCollection.Name)]
public sealed partial class PerfToolTests(SharedBroker shared)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    private static string NewTopic(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task ProducesThenConsumesExactlyTheRecordsWithSaneFigures()
    {
        var topic = NewTopic("perf");
        var produce = await RunAsync("produce", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "20000", "--record-size", "100", "--acks", "all", "--partitions", "2");
        var produced = Summary.Parse(produce.Stdout);
        Assert.Equal(20_000, produced.Records);
        Assert.InRange(produced.MegabytesPerSecond, 20_000 * 100 / 1048576.0 / produced.Seconds * 0.95, 20_000 * 100 / 1048576.0 / produced.Seconds * 1.05);
        AssertOrdered(produced, "ack");

        var consume = await RunAsync("consume", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "20000", "--timeout-ms", "10000");
        var consumed = Summary.Parse(consume.Stdout);
        Assert.Equal(20_000, consumed.Records);
        Assert.True(consumed.RecordsPerSecond > 0 && consumed.MegabytesPerSecond > 0, consume.Stdout);
        Assert.Null(consumed.Latency);

        // Without --records it reads to the end of both partitions and stops there.
        var all = Summary.Parse((await RunAsync("consume", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--timeout-ms", "10000")).Stdout);
        Assert.Equal(20_000, all.Records);
    }

    [Fact]
    public async Task MeasuresEndToEndLatencyOfItsOwnRecordsOnly()
    {
        var topic = NewTopic("perf-e2e");

        // Records already in the topic are not counted: reading starts at the end.
        await RunAsync("produce", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "500", "--record-size", "10");
        var e2e = await RunAsync("e2e", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "2000", "--record-size", "64", "--acks", "1", "--throughput", "10000");
        var summary = Summary.Parse(e2e.Stdout);
        Assert.Equal(2_000, summary.Records);
        AssertOrdered(summary, "end-to-end");

        // 2,000 records at 10,000/s take about 0.2 s, however fast the broker is.
        Assert.InRange(summary.Seconds, 0.15, 30);
    }

    [Fact]
    public async Task ProducesInTransactionsThatAReadCommittedConsumerSees()
    {
        var topic = NewTopic("perf-txn");

        // 4,500 records, a commit every 1,000: four full transactions and the last one of 500.
        var produce = await RunAsync("produce", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "4500", "--record-size", "100", "--acks", "all", "--partitions", "2", "--transactional-id", topic, "--commit-records", "1000", "--commit-ms", "600000");
        var produced = Summary.Parse(produce.Stdout);
        Assert.Equal(4_500, produced.Records);
        AssertOrdered(produced, "ack");
        Assert.Contains("5 transactions committed", produce.Stdout);
        var commits = CommitPattern().Matches(produce.Stdout);
        Assert.Equal(["commit (flush + EndTxn)", "EndTxn"], commits.Select(m => m.Groups["kind"].Value));
        foreach (var c in commits.Cast<Match>())
        {
            var (p50, p99, max) = (Number(c, "p50"), Number(c, "p99"), Number(c, "max"));
            Assert.True(p50 > 0 && p50 <= p99 && p99 <= max, $"commit percentiles out of order: {produce.Stdout}");
        }

        // Every record is committed: a read_committed consumer reads all of them.
        var consume = await RunAsync("consume", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--timeout-ms", "10000", "--config", "isolation.level=read_committed");
        Assert.Equal(4_500, Summary.Parse(consume.Stdout).Records);
    }

    [Fact]
    public async Task FailsWithAUsageMessageOnBadArguments()
    {
        foreach (var args in new[]
        {
            Array.Empty<string>(),
            ["produce", "--topic", "t", "--records", "1", "--record-size", "1"],
            ["produce", "--bootstrap", "b", "--topic", "t", "--records", "x", "--record-size", "1"],
            ["consume", "--bootstrap", "b", "--topic", "t", "--acks", "1"],
            ["e2e", "--bootstrap", "b", "--topic", "t", "--records", "1", "--record-size", "4"],
            ["produce", "--bootstrap", "b", "--topic", "t", "--records", "1", "--record-size", "1", "--compression", "brotli"],
            ["produce", "--bootstrap", "b", "--topic", "t", "--records", "1", "--record-size", "1", "--transactional-id", "x"],
            ["produce", "--bootstrap", "b", "--topic", "t", "--records", "1", "--record-size", "1", "--commit-ms", "100"],
            ["produce", "--bootstrap", "b", "--topic", "t", "--records", "1", "--record-size", "1", "--acks", "1", "--idempotence", "true"],
            ["bench"],
        })
        {
            var result = await RunAsync(expectedExitCode: 2, args);
            Assert.Contains("usage:", result.Stderr);
            Assert.Empty(result.Stdout);
        }
    }

    [Fact]
    public async Task FailsWhenNothingArrivesInTime()
    {
        var topic = NewTopic("perf-short");
        await RunAsync("produce", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "10", "--record-size", "10");
        var consume = await RunAsync(1, "consume", "--bootstrap", shared.Broker.BootstrapServers, "--topic", topic, "--records", "11", "--timeout-ms", "500");
        Assert.Equal(10, Summary.Parse(consume.Stdout).Records);
        Assert.Contains("no record for 500 ms after 10 records of 11", consume.Stderr);

        var unreachable = $"127.0.0.1:{BrokerProcess.FreePort()}";
        var produce = await RunAsync(1, "produce", "--bootstrap", unreachable, "--topic", topic, "--records", "10", "--record-size", "10", "--timeout-ms", "500");
        Assert.Contains("moldau-perf:", produce.Stderr);
    }

    private static void AssertOrdered(Summary summary, string kind)
    {
        Assert.True(summary.RecordsPerSecond > 0 && summary.MegabytesPerSecond > 0, $"rates: {summary}");
        var l = summary.Latency ?? throw new Xunit.Sdk.XunitException($"no latency line in {summary}");
        Assert.Equal(kind, l.Kind);
        Assert.True(l.P50 > 0 && l.P50 <= l.P95 && l.P95 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max, $"percentiles out of order: {summary}");
        Assert.InRange(l.Avg, 0, l.Max);
    }

    private static double Number(Match match, string group) => double.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);

    private static Task<ExternalTool.Result> RunAsync(params string[] args) => RunAsync(0, args);

    private static async Task<ExternalTool.Result> RunAsync(int expectedExitCode, params string[] args)
    {
        var result = await ExternalTool.RunAsync("dotnet", [ToolDll(), .. args], timeout: Timeout);
        Assert.True(result.ExitCode == expectedExitCode, $"moldau-perf {string.Join(' ', args)} exited with {result.ExitCode}, expected {expectedExitCode}\nstdout:\n{result.Stdout}\nstderr:\n{result.Stderr}");
        return result;
    }

    private static string ToolDll()
    {
        var path = typeof(PerfToolTests).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == "MoldauPerfDll").Value;
        return File.Exists(path) ? path : throw new FileNotFoundException("moldau-perf was not built", path);
    }

    /// <summary>The figures of a summary, as printed on stdout.</summary>
    private sealed record Summary(long Records, double Seconds, double RecordsPerSecond, double MegabytesPerSecond, LatencyLine? Latency, string Text)
    {
        public static Summary Parse(string stdout)
        {
            var rates = RatesLine().Match(stdout);
            Assert.True(rates.Success, $"no summary in:\n{stdout}");
            var latency = LatencyPattern().Match(stdout);
            return new Summary(
                long.Parse(rates.Groups["records"].Value, CultureInfo.InvariantCulture),
                Number(rates, "seconds"),
                Number(rates, "rate"),
                Number(rates, "mb"),
                latency.Success
                    ? new LatencyLine(latency.Groups["kind"].Value, Number(latency, "avg"), Number(latency, "p50"), Number(latency, "p95"), Number(latency, "p99"), Number(latency, "p999"), Number(latency, "max"))
                    : null,
                stdout);
        }

        private static double Number(Match match, string group) => double.Parse(match.Groups[group].Value, CultureInfo.InvariantCulture);

        public override string ToString() => Text;
    }

    private sealed record LatencyLine(string Kind, double Avg, double P50, double P95, double P99, double P999, double Max);

    [GeneratedRegex(@"^(?<records>\d+) records in (?<seconds>[\d.]+) s: (?<rate>[\d.]+) records/s, (?<mb>[\d.]+) MB/s$", RegexOptions.Multiline)]
    private static partial Regex RatesLine();

    [GeneratedRegex(@"^(?<kind>[\w-]+) latency ms: avg (?<avg>[\d.]+), p50 (?<p50>[\d.]+), p95 (?<p95>[\d.]+), p99 (?<p99>[\d.]+), p99\.9 (?<p999>[\d.]+), max (?<max>[\d.]+)$", RegexOptions.Multiline)]
    private static partial Regex LatencyPattern();

    [GeneratedRegex(@"^(?<kind>commit \(flush \+ EndTxn\)|EndTxn) latency ms: avg (?<avg>[\d.]+), p50 (?<p50>[\d.]+), p99 (?<p99>[\d.]+), max (?<max>[\d.]+)$", RegexOptions.Multiline)]
    private static partial Regex CommitPattern();
}
