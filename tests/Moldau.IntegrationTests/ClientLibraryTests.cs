using System.Text.Json;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>The pure-language clients, unmodified: kafka-python and sarama (Debian), kafkajs (npm), each doing admin, produce and a consumer group.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ClientLibraryTests(SharedBroker shared)
{
    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    /// <summary>Runs a client's matrix script and requires every check it reports to hold.</summary>
    private async Task AssertMatrixAsync(string program, string? script)
    {
        var prefix = Path.GetFileNameWithoutExtension(script ?? program).Replace('_', '-') + "-" + Guid.NewGuid().ToString("N")[..6];
        IEnumerable<string> args = [shared.Broker.BootstrapServers, prefix];
        if (script is not null)
        {
            args = args.Prepend(Path.Combine(ClientsDir(), script));
        }

        var result = await ExternalTool.RunAsync(program, args, timeout: TimeSpan.FromMinutes(4));
        Assert.True(result.ExitCode == 0, $"{script ?? program} failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        var report = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        var failed = report.GetProperty("checks").EnumerateObject().Where(c => !c.Value.GetBoolean()).Select(c => c.Name).ToList();
        Assert.True(failed.Count == 0, $"{script ?? program}: failed checks {string.Join(", ", failed)}; facts {report.GetProperty("facts")}");
        Assert.True(report.GetProperty("checks").EnumerateObject().Count() >= 10, "the matrix reported too few checks");
    }

    /// <summary>
    /// kafka-python: admin create, list, describe, delete; 5,000 records with null, empty and binary
    /// keys, headers and timestamps per codec it supports here and acks 0, 1, all; offsets for times;
    /// a two-member group, a leave that rebalances before the session timeout, a new member
    /// resuming exactly at the committed offsets.
    /// </summary>
    [Fact]
    public async Task KafkaPython()
    {
        // Debian's Python packages import only under Debian's own interpreter.
        Assert.True(File.Exists("/usr/bin/python3"), "Debian's /usr/bin/python3 is required (scripts/test.sh installs python3-kafka)");
        await AssertMatrixAsync("/usr/bin/python3", "python/kafka_python_matrix.py");
    }

    /// <summary>librdkafka 2.0.2 through Debian's python3-confluent-kafka: the same matrix, with every codec and an idempotent producer.</summary>
    [Fact]
    public async Task ConfluentKafkaPythonOnLibrdkafka2_0_2()
    {
        Assert.True(File.Exists("/usr/bin/python3"), "Debian's /usr/bin/python3 is required (scripts/test.sh installs python3-confluent-kafka)");
        await AssertMatrixAsync("/usr/bin/python3", "python/confluent_kafka_matrix.py");
    }

    /// <summary>kafkajs: the same matrix (codecs: none and gzip, the ones kafkajs ships), with an idempotent producer.</summary>
    [Fact]
    public async Task Kafkajs()
    {
        var node = ExternalTool.Find("node") ?? throw new InvalidOperationException("node is not installed (scripts/test.sh installs it)");
        Assert.True(Directory.Exists(Path.Combine(ClientsDir(), "node", "node_modules", "kafkajs")), "run npm ci in tests/clients/node (scripts/test.sh does)");
        await AssertMatrixAsync(node, "node/kafkajs_matrix.js");
    }

    /// <summary>sarama: the same matrix with every codec, an idempotent producer and acks 0, 1, all.</summary>
    [Fact]
    public async Task Sarama()
    {
        var go = ExternalTool.Find("go") ?? throw new InvalidOperationException("go is not installed (scripts/test.sh installs golang-go and golang-github-shopify-sarama-dev)");
        var output = Path.Combine(Path.GetTempPath(), "moldau-sarama-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(output);
        try
        {
            // Debian's Go packages build offline in GOPATH mode.
            var env = new Dictionary<string, string> { ["GOPATH"] = "/usr/share/gocode", ["GO111MODULE"] = "off", ["GOCACHE"] = Path.Combine(output, "cache"), ["GOFLAGS"] = string.Empty };
            var binary = Path.Combine(output, "sarama_matrix");
            var build = await ExternalTool.RunAsync(go, ["build", "-o", binary, Path.Combine(ClientsDir(), "go", "sarama_matrix.go")], timeout: TimeSpan.FromMinutes(5), environment: env);
            Assert.True(build.ExitCode == 0, build.Stderr);
            await AssertMatrixAsync(binary, null);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
