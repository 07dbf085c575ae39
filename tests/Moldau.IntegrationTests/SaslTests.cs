using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

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
    /// <summary>
    /// Bad SASL input over real TCP, each answered as Kafka answers it and closed with one log
    /// line, while kcat still logs in: a request before the handshake, a token before the
    /// handshake, an unknown mechanism, a 10 MB token after SaslHandshake v1 (in SaslAuthenticate)
    /// and after v0 (bare).
    /// </summary>
    [Fact]
    public async Task HostileSaslInputIsClosedWithOneLineWhileOthersLogIn()
    {
        int Lines(string text) => Broker.Output.Split('\n').Count(l => l.Contains(text, StringComparison.Ordinal));

        // Anything but ApiVersions and the SASL APIs before authentication: closed, no answer.
        await using (var early = await KafkaTestClient.ConnectAsync(Broker.Port))
        {
            await early.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.Metadata, 12, 1, new MetadataRequest()));
            Assert.Null(await early.ReadFrameAsync());
        }

        await Broker.WaitForOutputAsync("Metadata before authentication on SASL_PLAINTEXT");

        // A token before any handshake: ILLEGAL_SASL_STATE, then closed.
        await using (var token = await KafkaTestClient.ConnectAsync(Broker.Port))
        {
            var answer = await token.SendAsync<SaslAuthenticateResponse>(ApiKey.SaslAuthenticate, 2, new SaslAuthenticateRequest { AuthBytes = "\0alice\0alice-secret"u8.ToArray() });
            Assert.Equal((short)ErrorCode.IllegalSaslState, answer.ErrorCode);
            Assert.True(await token.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));
        }

        await Broker.WaitForOutputAsync("SaslAuthenticate before SaslHandshake");

        // A mechanism the listener does not have: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed.
        await using (var unknown = await KafkaTestClient.ConnectAsync(Broker.Port))
        {
            var answer = await unknown.SendAsync<SaslHandshakeResponse>(ApiKey.SaslHandshake, 1, new SaslHandshakeRequest { Mechanism = "GSSAPI" });
            Assert.Equal((short)ErrorCode.UnsupportedSaslMechanism, answer.ErrorCode);
            Assert.Equal(["PLAIN", "SCRAM-SHA-512"], answer.Mechanisms);
            Assert.True(await unknown.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));
        }

        await Broker.WaitForOutputAsync("mechanism 'GSSAPI'");

        // 10 MB tokens: the declared size is over sasl.server.max.receive.size (512 KiB), so the
        // connection closes before the body is read or anything is allocated for it.
        foreach (var version in new short[] { 1, 0 })
        {
            await using var big = await KafkaTestClient.ConnectAsync(Broker.Port);
            var handshake = await big.SendAsync<SaslHandshakeResponse>(ApiKey.SaslHandshake, version, new SaslHandshakeRequest { Mechanism = "PLAIN" });
            Assert.Equal(0, handshake.ErrorCode);
            var size = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(size, 10 * 1024 * 1024);
            await big.SendRawAsync(size);
            await big.SendRawAsync(new byte[64 * 1024]);
            Assert.True(await big.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));
        }

        // One line per connection, and lines of one kind at most every 10 s (the second is counted into the next).
        await Broker.WaitForOutputAsync("declared frame size 10485760 outside 0..524288 (sasl.server.max.receive.size)");
        Assert.InRange(Lines("(sasl.server.max.receive.size)"), 1, 2);
        Assert.Equal(1, Lines("Metadata before authentication"));
        Assert.Equal(1, Lines("SaslAuthenticate before SaslHandshake"));
        var allowed = await ExternalTool.RunAsync(Kcat(), ["-L", .. Sasl("SCRAM-SHA-512", "alice", "alice-secret")]);
        Assert.True(allowed.ExitCode == 0, allowed.Stderr + Broker.Output);
        Assert.Contains("1 brokers", allowed.Stdout, StringComparison.Ordinal);
    }
}
