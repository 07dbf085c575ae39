using System.Text.Json;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>The pure-language clients, unmodified: kafka-python and sarama (Debian), kafkajs (npm), each doing admin, produce and a consumer group.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ClientLibraryTests(SharedBroker shared)
{
    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    private async Task<JsonElement> RunAsync(string program, string? script)
    {
        var topic = Path.GetFileNameWithoutExtension(script ?? program).Replace('_', '-') + "-" + Guid.NewGuid().ToString("N")[..8];
        IEnumerable<string> args = [shared.Broker.BootstrapServers, topic, "group-" + topic];
        if (script is not null)
        {
            args = args.Prepend(Path.Combine(ClientsDir(), script));
        }

        var result = await ExternalTool.RunAsync(program, args, timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, $"{script ?? program} failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        return JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
    }

    [Fact]
    public async Task KafkaPython()
    {
        // Debian's Python packages import only under Debian's own interpreter.
        Assert.True(File.Exists("/usr/bin/python3"), "Debian's /usr/bin/python3 is required (scripts/test.sh installs python3-kafka)");
        var r = await RunAsync("/usr/bin/python3", "python/kafka_python_roundtrip.py");
        Assert.Equal("2.0.2", r.GetProperty("version").GetString());
        Assert.True(r.GetProperty("topic_listed").GetBoolean());
        Assert.Equal(100, r.GetProperty("received").GetInt32());
        Assert.True(r.GetProperty("values_match").GetBoolean());
        Assert.Equal(100, r.GetProperty("committed").GetInt32());
    }

    [Fact]
    public async Task Kafkajs()
    {
        var node = ExternalTool.Find("node") ?? throw new InvalidOperationException("node is not installed (scripts/test.sh installs it)");
        Assert.True(Directory.Exists(Path.Combine(ClientsDir(), "node", "node_modules", "kafkajs")), "run npm ci in tests/clients/node (scripts/test.sh does)");
        var r = await RunAsync(node, "node/kafkajs_roundtrip.js");
        Assert.True(r.GetProperty("listed").GetBoolean());
        Assert.Equal(100, r.GetProperty("received").GetInt32());
        Assert.True(r.GetProperty("valuesMatch").GetBoolean());
        Assert.Equal(100, r.GetProperty("committed").GetInt32());
        Assert.True(r.GetProperty("groupListed").GetBoolean());
    }

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
            var binary = Path.Combine(output, "sarama_roundtrip");
            var build = await ExternalTool.RunAsync(go, ["build", "-o", binary, Path.Combine(ClientsDir(), "go", "sarama_roundtrip.go")], timeout: TimeSpan.FromMinutes(5), environment: env);
            Assert.True(build.ExitCode == 0, build.Stderr);
            var r = await RunAsync(binary, null);
            Assert.True(r.GetProperty("listed").GetBoolean());
            Assert.Equal(100, r.GetProperty("received").GetInt32());
            Assert.True(r.GetProperty("valuesMatch").GetBoolean());
            Assert.Equal(100, r.GetProperty("committed").GetInt32());
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }
}
