using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Moldau.Security.Tls;

namespace Moldau.Security.Tests.Tls;

public sealed class TlsServerTests : IClassFixture<TlsServerTests.Pki>
{
    private readonly TestPki _pki;

    public TlsServerTests(Pki pki) => _pki = pki.Value;

    /// <summary>One set of certificates for the class.</summary>
    public sealed class Pki : IDisposable
    {
        public TestPki Value { get; } = TestPki.Create();

        public void Dispose() => Value.Dispose();
    }

    private Dictionary<string, string> Props(params (string Key, string Value)[] extra)
    {
        var props = new Dictionary<string, string>
        {
            ["ssl.keystore.location"] = _pki.Path("server.p12"),
            ["ssl.keystore.password"] = TestPki.Password,
            ["ssl.truststore.location"] = _pki.Path("ca.p12"),
            ["ssl.truststore.password"] = TestPki.Password,
        };
        foreach (var (k, v) in extra)
        {
            props[k] = v;
        }

        return props;
    }

    private static TlsServer Server(Dictionary<string, string> props) =>
        TlsServer.Create(TlsSettings.Parse(k => props.TryGetValue(k, out var v) ? v : null));

    [Fact]
    public void Pkcs12_keystore_loads_with_its_chain()
    {
        var m = Server(Props()).Material;
        Assert.Equal("CN=localhost, OU=Brokers, O=Moldau", m.Certificate.Subject);
        Assert.True(m.Certificate.HasPrivateKey);
        Assert.Single(m.Trusted!);
    }

    [Theory]
    [InlineData("server.pem", null)]
    [InlineData("server.pem", "PEM")]
    public void Pem_keystore_file_loads(string file, string? type)
    {
        var props = Props(("ssl.keystore.location", _pki.Path(file)), ("ssl.truststore.location", _pki.Path("ca-cert.pem")));
        props.Remove("ssl.keystore.password");
        props.Remove("ssl.truststore.password");
        if (type is not null)
        {
            props["ssl.keystore.type"] = type;
            props["ssl.truststore.type"] = type;
        }

        var m = Server(props).Material;
        Assert.True(m.Certificate.HasPrivateKey);
        Assert.Equal(_pki.Ca.Thumbprint, Assert.Single(m.Trusted!).Thumbprint);
    }

    [Fact]
    public void Inline_pem_with_an_encrypted_key_loads()
    {
        var props = new Dictionary<string, string>
        {
            ["ssl.keystore.type"] = "PEM",
            ["ssl.keystore.certificate.chain"] = File.ReadAllText(_pki.Path("server-cert.pem")),
            ["ssl.keystore.key"] = File.ReadAllText(_pki.Path("server-key-enc.pem")),
            ["ssl.key.password"] = TestPki.Password,
            ["ssl.truststore.type"] = "PEM",
            ["ssl.truststore.certificates"] = File.ReadAllText(_pki.Path("ca-cert.pem")),
        };
        Assert.True(Server(props).Material.Certificate.HasPrivateKey);

        props["ssl.key.password"] = "wrong";
        var e = Assert.Throws<TlsConfigException>(() => Server(props));
        Assert.Contains("ssl.key.password", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Wrong_keystore_password_says_so()
    {
        var e = Assert.Throws<TlsConfigException>(() => Server(Props(("ssl.keystore.password", "nope"))));
        Assert.Contains("ssl.keystore.password", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Jks_is_refused_with_the_conversion_command()
    {
        var jks = _pki.Path("server.jks");
        File.WriteAllBytes(jks, [0xFE, 0xED, 0xFE, 0xED, 0, 0, 0, 2, 0, 0, 0, 0]);
        var e = Assert.Throws<TlsConfigException>(() => Server(Props(("ssl.keystore.location", jks))));
        Assert.Contains("keytool -importkeystore", e.Message, StringComparison.Ordinal);
        Assert.Contains("-deststoretype PKCS12", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<TlsConfigException>(() => Server(Props(("ssl.truststore.type", "JKS"))));
        Assert.Contains("ssl.truststore.location", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ssl.client.auth", "sometimes")]
    [InlineData("ssl.enabled.protocols", "TLSv1.1")]
    [InlineData("ssl.cipher.suites", "TLS_NOT_A_SUITE")]
    [InlineData("ssl.principal.mapping.rules", "DEFAULT/L")]
    [InlineData("ssl.keystore.type", "BKS")]
    public void Bad_settings_are_refused(string key, string value)
    {
        var e = Assert.Throws<TlsConfigException>(() => Server(Props((key, value))));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kafka_cipher_suite_names_map_to_dotnet()
    {
        Assert.Equal(TlsCipherSuite.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TlsSettings.CipherSuite("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"));
        Assert.Equal(TlsCipherSuite.TLS_AES_256_GCM_SHA384, TlsSettings.CipherSuite("TLS_AES_256_GCM_SHA384"));
    }

    [Fact]
    public async Task Client_certificate_gives_the_mapped_principal()
    {
        var server = Server(Props(("ssl.client.auth", "required"), ("ssl.principal.mapping.rules", "RULE:^CN=(.*?),OU=Clients.*$/$1/U,DEFAULT")));
        var (error, principal, _) = await HandshakeAsync(server, "client.p12");
        Assert.Null(error);
        Assert.Equal("User:ALICE", principal);
    }

    [Fact]
    public async Task Default_mapping_is_the_rfc2253_subject()
    {
        var server = Server(Props(("ssl.client.auth", "requested")));
        var (_, principal, _) = await HandshakeAsync(server, "client.p12");
        Assert.Equal("User:CN=alice,OU=Clients,O=Moldau,C=CZ", principal);
        (_, principal, _) = await HandshakeAsync(server, null);
        Assert.Equal("User:ANONYMOUS", principal);
    }

    [Fact]
    public async Task No_client_auth_asks_for_no_certificate()
    {
        // ssl.client.auth=none (the default): the server sends no CertificateRequest, so a client
        // holding a certificate does not present it and is User:ANONYMOUS.
        var server = Server(Props(("ssl.principal.mapping.rules", "RULE:^CN=(.*?),OU=Clients.*$/$1/,DEFAULT")));
        Assert.Equal(ClientAuth.None, server.Settings.ClientAuth);
        var (error, principal, verdict) = await HandshakeAsync(server, "client.p12");
        Assert.Null(error);
        Assert.Equal("User:ANONYMOUS", principal);
        Assert.False(verdict.Presented);
    }

    [Fact]
    public async Task A_session_made_without_client_auth_is_not_resumed_where_it_is_required()
    {
        // Same server certificate, so the same .NET session cache; the client caches the session
        // by host name. Resumed, the second handshake would carry no client certificate.
        var open = Server(Props());
        var (error, principal, _) = await HandshakeAsync(open, "client.p12");
        Assert.Null(error);
        Assert.Equal("User:ANONYMOUS", principal);

        var strict = Server(Props(("ssl.client.auth", "required")));
        (error, principal, _) = await HandshakeAsync(strict, "client.p12");
        Assert.Null(error);
        Assert.Equal("User:CN=alice,OU=Clients,O=Moldau,C=CZ", principal);
    }

    [Theory]
    [InlineData("expired.p12", "NotTimeValid")]
    [InlineData("untrusted.p12", "refused")]
    public async Task Requested_client_auth_still_refuses_a_bad_certificate(string clientCert, string reason)
    {
        // As Kafka's SSLEngine with want-client-auth: no certificate is fine, a bad one fails the handshake.
        var server = Server(Props(("ssl.client.auth", "requested")));
        var (error, _, verdict) = await HandshakeAsync(server, clientCert);
        Assert.NotNull(error);
        Assert.True(verdict.Presented);
        Assert.Contains(reason, verdict.Refusal, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "no client certificate")]
    [InlineData("expired.p12", "NotTimeValid")]
    [InlineData("untrusted.p12", "refused")]
    public async Task Required_client_auth_refuses(string? clientCert, string reason)
    {
        var server = Server(Props(("ssl.client.auth", "required")));
        var (error, _, verdict) = await HandshakeAsync(server, clientCert);
        Assert.NotNull(error);
        Assert.Contains(reason, verdict.Refusal, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Changed_files_are_used_by_the_next_handshake_and_bad_ones_are_not()
    {
        var dir = Directory.CreateTempSubdirectory("tls-reload-").FullName;
        try
        {
            var keystore = Path.Combine(dir, "keystore.p12");
            File.Copy(_pki.Path("server.p12"), keystore);
            var server = Server(Props(("ssl.keystore.location", keystore)));
            Assert.Equal(TlsReload.Unchanged, server.CheckFiles(out _));
            var first = server.Material.Certificate.Thumbprint;

            var next = _pki.IssueServer("server-next", "CN=localhost,OU=Next,O=Moldau");
            File.Copy(_pki.Path("server-next.p12"), keystore, overwrite: true);
            File.SetLastWriteTimeUtc(keystore, DateTime.UtcNow.AddSeconds(5));
            Assert.Equal(TlsReload.Reloaded, server.CheckFiles(out _));
            Assert.Equal(next.Thumbprint, server.Material.Certificate.Thumbprint);
            Assert.NotEqual(first, next.Thumbprint);
            var (_, _, _, seen) = await HandshakeWithCertAsync(server, null);
            Assert.Equal(next.Thumbprint, seen);

            File.WriteAllText(keystore, "not a keystore");
            Assert.Equal(TlsReload.Failed, server.CheckFiles(out var error));
            Assert.NotNull(error);
            Assert.Equal(next.Thumbprint, server.Material.Certificate.Thumbprint);
            Assert.Equal(TlsReload.Unchanged, server.CheckFiles(out _));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private async Task<(Exception? Error, string? Principal, ClientCertificateVerdict Verdict)> HandshakeAsync(TlsServer server, string? clientCert)
    {
        var (error, principal, verdict, _) = await HandshakeWithCertAsync(server, clientCert);
        return (error, principal, verdict);
    }

    // A real TCP handshake on loopback: the server side as the broker does it, the client with
    // SslStream trusting the test CA and presenting clientCert (a PKCS12 file) if any.
    private async Task<(Exception? Error, string? Principal, ClientCertificateVerdict Verdict, string? ServerThumbprint)> HandshakeWithCertAsync(TlsServer server, string? clientCert)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var verdict = new ClientCertificateVerdict();
        var serverSide = Task.Run(async () =>
        {
            using var socket = await listener.AcceptSocketAsync();
            await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
            await ssl.AuthenticateAsServerAsync(server.Options(verdict));
            var principal = server.PrincipalOf(ssl.RemoteCertificate);
            await ssl.WriteAsync(new byte[] { 1 });
            return principal;
        });

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, ((IPEndPoint)listener.LocalEndpoint).Port);
        await using var clientSsl = new SslStream(client.GetStream());
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = "localhost",
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck },
        };
        options.CertificateChainPolicy.CustomTrustStore.Add(_pki.Ca);
        if (clientCert is not null)
        {
            var all = X509CertificateLoader.LoadPkcs12CollectionFromFile(_pki.Path(clientCert), TestPki.Password);
            options.ClientCertificates = new X509CertificateCollection { all.First(c => c.HasPrivateKey) };
        }

        string? thumbprint = null;
        try
        {
            await clientSsl.AuthenticateAsClientAsync(options);
            thumbprint = (clientSsl.RemoteCertificate as X509Certificate2)?.Thumbprint;
            await clientSsl.ReadExactlyAsync(new byte[1]);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
        }

        try
        {
            return (null, await serverSide, verdict, thumbprint);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            return (e, null, verdict, thumbprint);
        }
    }
}
