using System.Collections.Concurrent;
using System.Text.Json;
using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Security.Tests;

namespace Moldau.IntegrationTests;

/// <summary>
/// A broker with a PLAINTEXT listener and a SASL_SSL one (SCRAM-SHA-512 and PLAIN, server
/// certificate from the tests' CA, no client certificates). The SCRAM users, one per client so
/// the broker's log tells whose login it was, are set before the first start with
/// <c>--add-scram</c> (kafka-storage format's option); the PLAIN user comes from the listener's JAAS
/// entry. The broker logs at debug level, where each login is a line naming principal and mechanism.
/// </summary>
public sealed class SaslSslBroker : IAsyncLifetime
{
    /// <summary>The SCRAM-SHA-512 users, one per client; each password is the name + "-secret".</summary>
    public static readonly string[] ScramUsers = ["dotnet", "pyconfluent", "kafkapython", "kafkajs", "sarama"];

    /// <summary>The PLAIN user (sarama's PLAIN login).</summary>
    public const string PlainUser = "gopher";

    public TestPki Pki { get; } = TestPki.Create();

    public BrokerProcess Broker { get; private set; } = null!;

    public int SaslPort { get; } = BrokerProcess.FreePort();

    public string SaslBootstrap => $"127.0.0.1:{SaslPort}";

    public async Task InitializeAsync()
    {
        var port = BrokerProcess.FreePort();
        Broker = await BrokerProcess.StartAsync(
            properties: new Dictionary<string, string>
            {
                ["listeners"] = $"PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{SaslPort}",
                ["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
                ["listener.name.sasl_ssl.ssl.keystore.type"] = "PKCS12",
                ["listener.name.sasl_ssl.ssl.keystore.location"] = Pki.Path("server.p12"),
                ["listener.name.sasl_ssl.ssl.keystore.password"] = TestPki.Password,
                ["listener.name.sasl_ssl.sasl.enabled.mechanisms"] = "SCRAM-SHA-512,PLAIN",
                ["listener.name.sasl_ssl.plain.sasl.jaas.config"] =
                    $"org.apache.kafka.common.security.plain.PlainLoginModule required user_{PlainUser}=\"{PlainUser}-secret\";",
            },
            environment: new Dictionary<string, string> { ["MOLDAU_LOG_LEVEL"] = "debug" },
            arguments: [.. ScramUsers.SelectMany(u => new[] { "--add-scram", $"SCRAM-SHA-512=[name={u},password={u}-secret]" })],
            port: port);
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        Pki.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class SaslSslCollection : ICollectionFixture<SaslSslBroker>
{
    public const string Name = "sasl_ssl broker";
}

/// <summary>
/// Every client of the suite over SASL_SSL: Confluent.Kafka (librdkafka 2.16), confluent-kafka-python
/// (Debian's, librdkafka 2.0.2), kafka-python 2.0.2 and kafkajs log in with SCRAM-SHA-512, sarama with
/// PLAIN and with SCRAM-SHA-512 (through the SCRAM client sarama asks its user for), produce and
/// consume back; each is also refused with a wrong password, and the broker's log says whose login
/// it was and why it failed. kcat is tested over SASL_SSL in <see cref="SaslSslTests"/>.
/// </summary>
[Collection(SaslSslCollection.Name)]
public sealed class SaslSslClientTests(SaslSslBroker broker)
{
    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    private static string NewTopic(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    private string Ca => broker.Pki.Path("ca-cert.pem");

    [Fact]
    public async Task ConfluentKafkaDotnetRoundTripsWithScramSha512AndIsRefusedAWrongPassword()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewTopic("sasl-dotnet");
        ClientConfig Sasl(string password) => new()
        {
            BootstrapServers = broker.SaslBootstrap,
            SecurityProtocol = SecurityProtocol.SaslSsl,
            SslCaLocation = Ca,
            SaslMechanism = SaslMechanism.ScramSha512,
            SaslUsername = "dotnet",
            SaslPassword = password,
        };
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig(Sasl("dotnet-secret")) { Acks = Acks.All }).Build())
        {
            for (var i = 0; i < 50; i++)
            {
                await producer.ProduceAsync(topic, new Message<Null, string> { Value = "v" + i });
            }
        }

        using (var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig(Sasl("dotnet-secret")) { GroupId = topic, AutoOffsetReset = AutoOffsetReset.Earliest }).Build())
        {
            consumer.Subscribe(topic);
            var got = new List<string>();
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (got.Count < 50 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromSeconds(1)) is { } r)
                {
                    got.Add(r.Message.Value);
                }
            }

            consumer.Close();
            Assert.Equal(Enumerable.Range(0, 50).Select(i => "v" + i), got);
        }

        await broker.Broker.WaitForOutputAsync("authenticated as User:dotnet with SCRAM-SHA-512");

        // A wrong password: librdkafka reports an authentication error (not a network one).
        var errors = new ConcurrentQueue<Error>();
        using (var refused = new ProducerBuilder<Null, string>(new ProducerConfig(Sasl("not-it"))).SetErrorHandler((_, e) => errors.Enqueue(e)).Build())
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!errors.Any(e => e.Code == ErrorCode.Local_Authentication) && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }
        }

        var authentication = errors.FirstOrDefault(e => e.Code == ErrorCode.Local_Authentication);
        Assert.True(authentication is not null, string.Join("; ", errors.Select(e => e.ToString())));
        Assert.Contains("Authentication failed: Invalid credentials", authentication.Reason, StringComparison.Ordinal);
        await broker.Broker.WaitForOutputAsync("SCRAM-SHA-512: wrong password for user 'dotnet'");
    }

    [Theory]
    [InlineData("confluent", "pyconfluent")]
    [InlineData("kafka-python", "kafkapython")]
    public async Task PythonClientsRoundTripWithScramSha512AndAreRefusedAWrongPassword(string lib, string user)
    {
        var script = Path.Combine(ClientsDir(), "python", "sasl_roundtrip.py");
        await RunAsync("/usr/bin/python3", [script, lib, "roundtrip", broker.SaslBootstrap, NewTopic("sasl-py"), Ca, "SCRAM-SHA-512", user, user + "-secret"], "values_match");
        await broker.Broker.WaitForOutputAsync($"authenticated as User:{user} with SCRAM-SHA-512");
        await RunAsync("/usr/bin/python3", [script, lib, "refused", broker.SaslBootstrap, "unused", Ca, "SCRAM-SHA-512", user, "not-it"], "refused");
        await broker.Broker.WaitForOutputAsync($"SCRAM-SHA-512: wrong password for user '{user}'");
    }

    [Fact]
    public async Task KafkajsRoundTripsWithScramSha512AndIsRefusedAWrongPassword()
    {
        var node = ExternalTool.Find("node") ?? throw new InvalidOperationException("node is not installed");
        var script = Path.Combine(ClientsDir(), "node", "kafkajs_sasl.js");
        await RunAsync(node, [script, "roundtrip", broker.SaslBootstrap, NewTopic("sasl-js"), Ca, "scram-sha-512", "kafkajs", "kafkajs-secret"], "values_match");
        await broker.Broker.WaitForOutputAsync("authenticated as User:kafkajs with SCRAM-SHA-512");
        var refused = await RunAsync(node, [script, "refused", broker.SaslBootstrap, "unused", Ca, "scram-sha-512", "kafkajs", "not-it"], "refused");
        Assert.Contains("KafkaJSSASLAuthenticationError", refused.GetProperty("error").GetString(), StringComparison.Ordinal);
        await broker.Broker.WaitForOutputAsync("SCRAM-SHA-512: wrong password for user 'kafkajs'");
    }

    [Fact]
    public async Task SaramaRoundTripsWithPlainAndScramSha512AndIsRefusedAWrongPassword()
    {
        var go = ExternalTool.Find("go") ?? throw new InvalidOperationException("go is not installed");
        var output = Directory.CreateTempSubdirectory("sasl-sarama-").FullName;
        try
        {
            var env = new Dictionary<string, string> { ["GOPATH"] = "/usr/share/gocode", ["GO111MODULE"] = "off", ["GOCACHE"] = Path.Combine(output, "cache"), ["GOFLAGS"] = string.Empty };
            var binary = Path.Combine(output, "sarama_sasl");
            var build = await ExternalTool.RunAsync(go, ["build", "-o", binary, Path.Combine(ClientsDir(), "go", "sarama_sasl.go")], timeout: TimeSpan.FromMinutes(5), environment: env);
            Assert.True(build.ExitCode == 0, build.Stderr);

            await RunAsync(binary, ["roundtrip", broker.SaslBootstrap, NewTopic("sasl-go-plain"), Ca, "PLAIN", SaslSslBroker.PlainUser, SaslSslBroker.PlainUser + "-secret"], "values_match");
            await broker.Broker.WaitForOutputAsync($"authenticated as User:{SaslSslBroker.PlainUser} with PLAIN");
            await RunAsync(binary, ["roundtrip", broker.SaslBootstrap, NewTopic("sasl-go-scram"), Ca, "SCRAM-SHA-512", "sarama", "sarama-secret"], "values_match");
            await broker.Broker.WaitForOutputAsync("authenticated as User:sarama with SCRAM-SHA-512");

            await RunAsync(binary, ["refused", broker.SaslBootstrap, "unused", Ca, "PLAIN", SaslSslBroker.PlainUser, "not-it"], "refused");
            await broker.Broker.WaitForOutputAsync($"PLAIN: wrong password for user '{SaslSslBroker.PlainUser}'");
            await RunAsync(binary, ["refused", broker.SaslBootstrap, "unused", Ca, "SCRAM-SHA-512", "sarama", "not-it"], "refused");
            await broker.Broker.WaitForOutputAsync("SCRAM-SHA-512: wrong password for user 'sarama'");
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    /// <summary>Runs a client script and checks the boolean <paramref name="check"/> of the JSON line it prints last.</summary>
    private static async Task<JsonElement> RunAsync(string program, string[] args, string check)
    {
        var result = await ExternalTool.RunAsync(program, args, timeout: TimeSpan.FromMinutes(3));
        Assert.True(result.ExitCode == 0, $"{program} {string.Join(' ', args)} failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        var report = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.True(report.GetProperty(check).GetBoolean(), result.Stdout);
        return report;
    }
}
