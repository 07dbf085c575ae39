using System.Text.Json;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>The pure-language clients, unmodified: kafka-python (Debian) and kafkajs (npm), each doing admin, produce and a consumer group.</summary>
[Collection(BrokerCollection.Name)]
public sealed class ClientLibraryTests(SharedBroker shared)
{
    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    private async Task<JsonElement> RunAsync(string program, string script)
    {
        var topic = Path.GetFileNameWithoutExtension(script).Replace('_', '-') + "-" + Guid.NewGuid().ToString("N")[..8];
        var result = await ExternalTool.RunAsync(program, [Path.Combine(ClientsDir(), script), shared.Broker.BootstrapServers, topic, "group-" + topic], timeout: TimeSpan.FromSeconds(120));
        Assert.True(result.ExitCode == 0, $"{script} failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
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
}
