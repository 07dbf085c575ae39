using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Security.Tests;

namespace Moldau.IntegrationTests;

/// <summary>
/// A broker with a PLAINTEXT listener and an SSL one that requires client certificates
/// (listener.name.ssl.* keys, PKCS12 keystore, PEM truststore), with certificates the tests make.
/// </summary>
public sealed class TlsBroker : IAsyncLifetime
{
    public TestPki Pki { get; } = TestPki.Create();

    public BrokerProcess Broker { get; private set; } = null!;

    public int SslPort { get; } = BrokerProcess.FreePort();

    public string SslBootstrap => $"127.0.0.1:{SslPort}";

    public async Task InitializeAsync()
    {
        Broker = await StartAsync(Pki, SslPort, new Dictionary<string, string>
        {
            ["listener.name.ssl.ssl.client.auth"] = "required",
            ["ssl.principal.mapping.rules"] = "RULE:^CN=(.*?),OU=Clients.*$/$1/L,DEFAULT",
        });
    }

    /// <summary>Starts a broker with PLAINTEXT on its port and SSL on <paramref name="sslPort"/>.</summary>
    public static Task<BrokerProcess> StartAsync(TestPki pki, int sslPort, Dictionary<string, string> extra, string keystore = "server.p12")
    {
        var props = new Dictionary<string, string>
        {
            ["listener.name.ssl.ssl.keystore.location"] = pki.Path(keystore),
            ["listener.name.ssl.ssl.keystore.password"] = TestPki.Password,
            ["ssl.keystore.type"] = "PKCS12",
            ["ssl.truststore.type"] = "PEM",
            ["ssl.truststore.location"] = pki.Path("ca-cert.pem"),
            ["ssl.endpoint.identification.algorithm"] = "https",
        };
        foreach (var (k, v) in extra)
        {
            props[k] = v;
        }

        // listeners needs the plaintext port BrokerProcess picks: it is filled in by the caller below.
        return BrokerProcess.StartWithListenersAsync(props, sslPort, new Dictionary<string, string> { ["MOLDAU_LOG_LEVEL"] = "debug" });
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        Pki.Dispose();
    }
}

[CollectionDefinition(Name)]
public sealed class TlsCollection : ICollectionFixture<TlsBroker>
{
    public const string Name = "tls broker";
}

/// <summary>Real clients over SSL with a client certificate: produce and consume, the principal from the certificate.</summary>
[Collection(TlsCollection.Name)]
public sealed class TlsClientTests(TlsBroker tls)
{
    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    private static string Kcat() => ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed");

    private string[] KcatSsl(string cert = "client") =>
        ["-b", tls.SslBootstrap, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + tls.Pki.Path("ca-cert.pem"),
         "-X", "ssl.certificate.location=" + tls.Pki.Path(cert + "-cert.pem"), "-X", "ssl.key.location=" + tls.Pki.Path(cert + "-key.pem")];

    private static string NewTopic(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task KcatProducesAndConsumesWithAClientCertificate()
    {
        var topic = NewTopic("tls-kcat");
        var input = string.Concat(Enumerable.Range(0, 200).Select(i => $"k{i}:v{i}\n"));
        var produce = await ExternalTool.RunAsync(Kcat(), ["-P", .. KcatSsl(), "-t", topic, "-K:"], input);
        Assert.True(produce.ExitCode == 0, produce.Stderr);
        var consume = await ExternalTool.RunAsync(Kcat(), ["-C", .. KcatSsl(), "-t", topic, "-o", "beginning", "-e", "-q", "-K:"]);
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        Assert.Equal(input, consume.Stdout);

        // CN=alice,OU=Clients,... mapped by the RULE to "alice".
        await tls.Broker.WaitForOutputAsync("on SSL: Tls13 ");
        await tls.Broker.WaitForOutputAsync("principal User:alice");
    }

    [Fact]
    public async Task ConfluentKafkaDotnetRoundTrips()
    {
        Librdkafka.EnsureLoaded();
        var topic = NewTopic("tls-dotnet");
        var ssl = new ClientConfig
        {
            BootstrapServers = tls.SslBootstrap,
            SecurityProtocol = SecurityProtocol.Ssl,
            SslCaLocation = tls.Pki.Path("ca-cert.pem"),
            SslCertificateLocation = tls.Pki.Path("client-cert.pem"),
            SslKeyLocation = tls.Pki.Path("client-key.pem"),
        };
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig(ssl) { Acks = Acks.All }).Build())
        {
            for (var i = 0; i < 50; i++)
            {
                await producer.ProduceAsync(topic, new Message<Null, string> { Value = "v" + i });
            }
        }

        using var consumer = new ConsumerBuilder<Null, string>(new ConsumerConfig(ssl) { GroupId = topic, AutoOffsetReset = AutoOffsetReset.Earliest }).Build();
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

    [Theory]
    [InlineData("confluent")]
    [InlineData("kafka-python")]
    public async Task PythonClientsRoundTrip(string lib) =>
        await RoundTripAsync("/usr/bin/python3", [Path.Combine(ClientsDir(), "python", "tls_roundtrip.py"), lib]);

    [Fact]
    public async Task KafkajsRoundTrips()
    {
        var node = ExternalTool.Find("node") ?? throw new InvalidOperationException("node is not installed");
        await RoundTripAsync(node, [Path.Combine(ClientsDir(), "node", "kafkajs_tls.js")]);
    }

    [Fact]
    public async Task SaramaRoundTrips()
    {
        var go = ExternalTool.Find("go") ?? throw new InvalidOperationException("go is not installed");
        var output = Directory.CreateTempSubdirectory("tls-sarama-").FullName;
        try
        {
            var env = new Dictionary<string, string> { ["GOPATH"] = "/usr/share/gocode", ["GO111MODULE"] = "off", ["GOCACHE"] = Path.Combine(output, "cache"), ["GOFLAGS"] = string.Empty };
            var binary = Path.Combine(output, "sarama_tls");
            var build = await ExternalTool.RunAsync(go, ["build", "-o", binary, Path.Combine(ClientsDir(), "go", "sarama_tls.go")], timeout: TimeSpan.FromMinutes(5), environment: env);
            Assert.True(build.ExitCode == 0, build.Stderr);
            await RoundTripAsync(binary, []);
        }
        finally
        {
            Directory.Delete(output, recursive: true);
        }
    }

    private async Task RoundTripAsync(string program, string[] args)
    {
        string[] all = [.. args, tls.SslBootstrap, NewTopic("tls-client"), tls.Pki.Path("ca-cert.pem"), tls.Pki.Path("client-cert.pem"), tls.Pki.Path("client-key.pem")];
        var result = await ExternalTool.RunAsync(program, all, timeout: TimeSpan.FromMinutes(3));
        Assert.True(result.ExitCode == 0, $"{program} failed ({result.ExitCode}):\n{result.Stderr}\n{result.Stdout}");
        var report = JsonDocument.Parse(result.Stdout.Trim().Split('\n')[^1]).RootElement;
        Assert.True(report.GetProperty("values_match").GetBoolean(), result.Stdout);
    }

    /// <summary>Each bad client is closed with one line and the broker goes on serving a good one.</summary>
    [Fact]
    public async Task BadClientsAreRefusedAndOthersServed()
    {
        // Required client auth: no certificate, an expired one, one from a CA nobody trusts.
        var none = await ExternalTool.RunAsync(Kcat(), ["-L", "-b", tls.SslBootstrap, "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + tls.Pki.Path("ca-cert.pem"), "-m", "5"]);
        Assert.NotEqual(0, none.ExitCode);
        await tls.Broker.WaitForOutputAsync("TLS handshake failed: no client certificate (ssl.client.auth=required)");

        var expired = await ExternalTool.RunAsync(Kcat(), ["-L", .. KcatSsl("expired"), "-m", "5"]);
        Assert.NotEqual(0, expired.ExitCode);
        await tls.Broker.WaitForOutputAsync("refused: NotTimeValid");

        var untrusted = await ExternalTool.RunAsync(Kcat(), ["-L", .. KcatSsl("untrusted"), "-m", "5"]);
        Assert.NotEqual(0, untrusted.ExitCode);
        await tls.Broker.WaitForOutputAsync("client certificate 'CN=mallory, O=Elsewhere' refused");

        // Plaintext Kafka to the TLS port, TLS to the plaintext port, garbage to the TLS port.
        var plain = await ExternalTool.RunAsync(Kcat(), ["-L", "-b", tls.SslBootstrap, "-m", "5"]);
        Assert.NotEqual(0, plain.ExitCode);
        await tls.Broker.WaitForOutputAsync("it speaks plaintext Kafka to a TLS listener");

        var tlsToPlain = await ExternalTool.RunAsync(Kcat(), ["-L", .. KcatSsl(), "-b", tls.Broker.BootstrapServers, "-m", "5"]);
        Assert.NotEqual(0, tlsToPlain.ExitCode);
        await tls.Broker.WaitForOutputAsync("a TLS ClientHello on PLAINTEXT listener PLAINTEXT");

        using (var garbage = new TcpClient())
        {
            await garbage.ConnectAsync(IPAddress.Loopback, tls.SslPort);
            await garbage.GetStream().WriteAsync("GET / HTTP/1.1\r\n\r\n"u8.ToArray());
            Assert.Equal(0, await garbage.GetStream().ReadAsync(new byte[16]));
        }

        await tls.Broker.WaitForOutputAsync("first byte 0x47 is not a TLS handshake record");

        // A ClientHello-looking first byte, then garbage: the handshake fails.
        using (var bad = new TcpClient())
        {
            await bad.ConnectAsync(IPAddress.Loopback, tls.SslPort);
            await bad.GetStream().WriteAsync(new byte[] { 0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5, 6, 7, 8 });
            try
            {
                while (await bad.GetStream().ReadAsync(new byte[64]) > 0)
                {
                }
            }
            catch (IOException)
            {
            }
        }

        await tls.Broker.WaitForOutputAsync("TLS handshake failed:");

        var good = await ExternalTool.RunAsync(Kcat(), ["-L", .. KcatSsl()]);
        Assert.True(good.ExitCode == 0, good.Stderr);
    }
}

/// <summary>Certificate reload, a stalled handshake, and a JKS keystore.</summary>
public sealed class TlsLifecycleTests
{
    [Fact]
    public async Task ReplacedServerCertificateIsUsedByTheNextConnection()
    {
        using var pki = TestPki.Create();
        var keystore = pki.Path("live.p12");
        File.Copy(pki.Path("server.p12"), keystore);
        var sslPort = BrokerProcess.FreePort();
        await using var broker = await TlsBroker.StartAsync(pki, sslPort, new Dictionary<string, string>
        {
            ["moldau.ssl.reload.interval.ms"] = "200",
            ["moldau.request.receive.timeout.ms"] = "1000",
        }, keystore: "live.p12");
        Assert.Contains("OU=Brokers", await ServerSubjectAsync(pki, sslPort), StringComparison.Ordinal);

        // Written next to it and renamed over it, as certificate tools do.
        pki.IssueServer("next", "CN=localhost,OU=Renewed,O=Moldau");
        File.Copy(pki.Path("next.p12"), keystore + ".tmp");
        File.Move(keystore + ".tmp", keystore, overwrite: true);
        await broker.WaitForOutputAsync("TLS certificates reloaded");
        Assert.Contains("OU=Renewed", await ServerSubjectAsync(pki, sslPort), StringComparison.Ordinal);

        // A bad file keeps the certificate in use, with one line.
        File.WriteAllText(keystore, "not a keystore");
        await broker.WaitForOutputAsync("TLS files changed but do not load, keeping the certificates in use");
        Assert.Contains("OU=Renewed", await ServerSubjectAsync(pki, sslPort), StringComparison.Ordinal);

        // A client that connects and stalls its handshake is closed by the receive timeout.
        using var stalled = new TcpClient();
        await stalled.ConnectAsync(IPAddress.Loopback, sslPort);
        await stalled.GetStream().WriteAsync(new byte[] { 0x16 });
        Assert.Equal(0, await stalled.GetStream().ReadAsync(new byte[16]));
        await broker.WaitForOutputAsync("TLS handshake not done within 1000 ms");
    }

    [Fact]
    public async Task AServerCertificateForTheWrongHostIsRefusedByTheClientAndTheBrokerGoesOn()
    {
        using var pki = TestPki.Create();
        var sslPort = BrokerProcess.FreePort();
        await using var broker = await TlsBroker.StartAsync(pki, sslPort, [], keystore: "wronghost.p12");
        var kcat = ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed");
        string[] ssl = ["-L", "-b", $"127.0.0.1:{sslPort}", "-X", "security.protocol=ssl", "-X", "ssl.ca.location=" + pki.Path("ca-cert.pem"), "-m", "5"];

        // librdkafka checks the broker's name (ssl.endpoint.identification.algorithm=https by default).
        var checkedName = await ExternalTool.RunAsync(kcat, ssl);
        Assert.NotEqual(0, checkedName.ExitCode);
        await broker.WaitForOutputAsync("TLS handshake failed");

        var withoutNameCheck = await ExternalTool.RunAsync(kcat, [.. ssl, "-X", "ssl.endpoint.identification.algorithm=none"]);
        Assert.True(withoutNameCheck.ExitCode == 0, withoutNameCheck.Stderr);
    }

    [Fact]
    public async Task AJksKeystoreStopsStartUpWithTheConversionCommand()
    {
        using var pki = TestPki.Create();
        File.WriteAllBytes(pki.Path("server.jks"), [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]);
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => TlsBroker.StartAsync(pki, BrokerProcess.FreePort(), [], keystore: "server.jks"));
        Assert.Contains("keytool -importkeystore", e.Message, StringComparison.Ordinal);
        Assert.Contains("exited with 2", e.Message, StringComparison.Ordinal);
    }

    private static async Task<string> ServerSubjectAsync(TestPki pki, int port)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port);
        await using var ssl = new SslStream(client.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck },
        };
        options.CertificateChainPolicy.CustomTrustStore.Add(pki.Ca);
        await ssl.AuthenticateAsClientAsync(options);
        return ssl.RemoteCertificate!.Subject;
    }
}
