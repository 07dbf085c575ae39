using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// SASL_PLAINTEXT against the real broker with Debian's kcat (librdkafka 2.0.2): PLAIN users from
/// the listener's JAAS configuration, SCRAM-SHA-512 users from --add-scram, and refused logins.
/// </summary>
public sealed class SaslTests : IAsyncLifetime
{
    private BrokerProcess? _broker;

    private BrokerProcess Broker => _broker ?? throw new InvalidOperationException("not started");

    public async Task InitializeAsync()
    {
        var port = BrokerProcess.FreePort();
        _broker = await BrokerProcess.StartAsync(
            properties: new Dictionary<string, string>
            {
                ["listeners"] = $"SASL_PLAINTEXT://127.0.0.1:{port}",
                ["sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-512",
                ["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
                    "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"bob-secret\";",
                ["connection.failed.authentication.delay.ms"] = "100",
            },
            arguments: ["--add-scram", "SCRAM-SHA-512=[name=alice,password=alice-secret]"],
            port: port);
    }

    public async Task DisposeAsync()
    {
        if (_broker is not null)
        {
            await _broker.DisposeAsync();
        }
    }

    private static string Kcat() => ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed");

    private string[] Sasl(string mechanism, string user, string password) =>
    [
        "-b", Broker.BootstrapServers,
        "-X", "security.protocol=SASL_PLAINTEXT",
        "-X", $"sasl.mechanisms={mechanism}",
        "-X", $"sasl.username={user}",
        "-X", $"sasl.password={password}",
    ];

    [Theory]
    [InlineData("SCRAM-SHA-512", "alice", "alice-secret")]
    [InlineData("PLAIN", "bob", "bob-secret")]
    public async Task KcatProducesAndConsumesAfterLoggingIn(string mechanism, string user, string password)
    {
        var topic = "sasl-" + Guid.NewGuid().ToString("N")[..8];
        var input = string.Concat(Enumerable.Range(0, 50).Select(i => $"m{i}\n"));

        var produce = await ExternalTool.RunAsync(Kcat(), ["-P", .. Sasl(mechanism, user, password), "-t", topic], input);
        Assert.True(produce.ExitCode == 0, produce.Stderr + Broker.Output);

        var consume = await ExternalTool.RunAsync(Kcat(), ["-C", .. Sasl(mechanism, user, password), "-t", topic, "-o", "beginning", "-e", "-q"]);
        Assert.True(consume.ExitCode == 0, consume.Stderr + Broker.Output);
        Assert.Equal(input, consume.Stdout);
    }

    [Theory]
    [InlineData("SCRAM-SHA-512", "alice", "wrong")]
    [InlineData("SCRAM-SHA-512", "nobody", "alice-secret")]
    [InlineData("PLAIN", "bob", "wrong")]
    [InlineData("SCRAM-SHA-256", "alice", "alice-secret")]
    public async Task ARefusedLoginFailsWhileOthersKeepWorking(string mechanism, string user, string password)
    {
        var refused = await ExternalTool.RunAsync(Kcat(), ["-L", .. Sasl(mechanism, user, password), "-m", "5"]);
        Assert.NotEqual(0, refused.ExitCode);
        Assert.DoesNotContain("Metadata for all topics", refused.Stdout, StringComparison.Ordinal);

        var allowed = await ExternalTool.RunAsync(Kcat(), ["-L", .. Sasl("SCRAM-SHA-512", "alice", "alice-secret")]);
        Assert.True(allowed.ExitCode == 0, allowed.Stderr + Broker.Output);
        Assert.Contains("1 brokers", allowed.Stdout, StringComparison.Ordinal);
    }
}
