using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Security.Tests;

namespace Moldau.IntegrationTests;

/// <summary>
/// SASL over TLS end to end: a SASL_SSL listener with SCRAM-SHA-512, PLAIN and OAUTHBEARER
/// (unsecured JWTs) beside a PLAINTEXT one, ACLs on, User:ANONYMOUS (the PLAINTEXT side) a super
/// user that sets up credentials and ACLs with Confluent.Kafka's AdminClient. kcat logs in with
/// SCRAM-SHA-512 and PLAIN, Confluent.Kafka with OAUTHBEARER; each principal gets exactly what
/// its ACLs allow.
/// </summary>
public sealed class SaslSslTests : IAsyncLifetime
{
    private readonly TestPki _pki = TestPki.Create();
    private readonly int _saslPort = BrokerProcess.FreePort();
    private BrokerProcess _broker = null!;

    private string SaslBootstrap => $"127.0.0.1:{_saslPort}";

    public async Task InitializeAsync()
    {
        _broker = await BrokerProcess.StartWithListenerAsync(
            new Dictionary<string, string>
            {
                ["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
                ["listener.name.sasl_ssl.ssl.keystore.location"] = _pki.Path("server.p12"),
                ["listener.name.sasl_ssl.ssl.keystore.password"] = TestPki.Password,
                ["ssl.keystore.type"] = "PKCS12",
                ["listener.name.sasl_ssl.sasl.enabled.mechanisms"] = "SCRAM-SHA-512,PLAIN,OAUTHBEARER",
                ["listener.name.sasl_ssl.plain.sasl.jaas.config"] = "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"bob-secret\";",
                ["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                ["super.users"] = "User:ANONYMOUS",
            },
            $"SASL_SSL://127.0.0.1:{_saslPort}");
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        _pki.Dispose();
    }

    private static string Kcat() => ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed");

    private string[] KcatSasl(string mechanism, string user, string password) =>
        ["-b", SaslBootstrap, "-X", "security.protocol=sasl_ssl", "-X", "ssl.ca.location=" + _pki.Path("ca-cert.pem"),
         "-X", "sasl.mechanisms=" + mechanism, "-X", "sasl.username=" + user, "-X", "sasl.password=" + password];

    private IAdminClient Admin() => new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _broker.BootstrapServers }).Build();

    private static AclBinding Allow(ResourceType type, string name, AclOperation op, string principal) => new()
    {
        Pattern = new ResourcePattern { Type = type, Name = name, ResourcePatternType = ResourcePatternType.Literal },
        Entry = new AccessControlEntry { Principal = principal, Host = "*", Operation = op, PermissionType = AclPermissionType.Allow },
    };

    [Fact]
    public async Task ScramPlainAndOAuthBearerOverTlsEachGetWhatTheirAclsAllow()
    {
        Librdkafka.EnsureLoaded();
        var topic = "sasl-ssl-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = Admin())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
            await admin.AlterUserScramCredentialsAsync([new UserScramCredentialUpsertion
            {
                User = "alice",
                ScramCredentialInfo = new ScramCredentialInfo { Mechanism = ScramMechanism.ScramSha512, Iterations = 8192 },
                Password = "alice-secret"u8.ToArray(),
            }]);
            var described = await admin.DescribeUserScramCredentialsAsync(["alice"]);
            Assert.Equal(ScramMechanism.ScramSha512, described.UserScramCredentialsDescriptions.Single().ScramCredentialInfos.Single().Mechanism);

            // alice (SCRAM) may write and read, bob (PLAIN) may only read, carol (OAUTHBEARER) may write.
            await admin.CreateAclsAsync(
            [
                Allow(ResourceType.Topic, topic, AclOperation.Write, "User:alice"),
                Allow(ResourceType.Topic, topic, AclOperation.Read, "User:alice"),
                Allow(ResourceType.Topic, topic, AclOperation.Read, "User:bob"),
                Allow(ResourceType.Topic, topic, AclOperation.Write, "User:carol"),
            ]);
        }

        // SCRAM-SHA-512 over TLS: alice writes and reads back.
        var produced = await ExternalTool.RunAsync(Kcat(), ["-P", .. KcatSasl("SCRAM-SHA-512", "alice", "alice-secret"), "-t", topic], "from-alice\n");
        Assert.True(produced.ExitCode == 0, produced.Stderr);
        var consumed = await ExternalTool.RunAsync(Kcat(), ["-C", .. KcatSasl("SCRAM-SHA-512", "alice", "alice-secret"), "-t", topic, "-o", "beginning", "-e", "-q"]);
        Assert.True(consumed.ExitCode == 0, consumed.Stderr);
        Assert.Equal("from-alice", consumed.Stdout.Trim());

        // A wrong password is refused (the broker logs why; the client only learns it failed).
        var wrong = await ExternalTool.RunAsync(Kcat(), ["-L", .. KcatSasl("SCRAM-SHA-512", "alice", "not-it"), "-m", "5"]);
        Assert.NotEqual(0, wrong.ExitCode);
        Assert.Contains("Authentication failed", wrong.Stderr, StringComparison.OrdinalIgnoreCase);

        // PLAIN over TLS: bob reads, but may not write.
        var bobReads = await ExternalTool.RunAsync(Kcat(), ["-C", .. KcatSasl("PLAIN", "bob", "bob-secret"), "-t", topic, "-o", "beginning", "-e", "-q"]);
        Assert.True(bobReads.ExitCode == 0, bobReads.Stderr);
        Assert.Equal("from-alice", bobReads.Stdout.Trim());
        var bobWrites = await ExternalTool.RunAsync(Kcat(), ["-P", .. KcatSasl("PLAIN", "bob", "bob-secret"), "-t", topic, "-X", "message.timeout.ms=5000"], "from-bob\n");
        Assert.Contains("authoriz", bobWrites.Stderr, StringComparison.OrdinalIgnoreCase);

        // OAUTHBEARER with an unsecured JWT (the broker's default validator): carol writes.
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = SaslBootstrap,
            SecurityProtocol = SecurityProtocol.SaslSsl,
            SslCaLocation = _pki.Path("ca-cert.pem"),
            SaslMechanism = SaslMechanism.OAuthBearer,
            SaslOauthbearerConfig = "principal=carol",
            EnableSaslOauthbearerUnsecureJwt = true,
            MessageTimeoutMs = 20000,
        }).Build())
        {
            var delivered = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "from-carol" });
            Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        }

        var all = await ExternalTool.RunAsync(Kcat(), ["-C", .. KcatSasl("SCRAM-SHA-512", "alice", "alice-secret"), "-t", topic, "-o", "beginning", "-e", "-q"]);
        Assert.Equal(["from-alice", "from-carol"], all.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
