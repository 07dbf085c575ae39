using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Moldau.Security.Tests;

/// <summary>
/// Certificates made by the tests, written under /tmp/tls-*: a CA, a server certificate for
/// localhost and 127.0.0.1, a client certificate, an expired client certificate, a server
/// certificate for the wrong host, and a second CA nobody trusts with a client certificate of its
/// own. Each as PKCS12 (password <see cref="Password"/>) and PEM (certificate, key, and the two in
/// one file; the key also encrypted with <see cref="Password"/>).
/// </summary>
public sealed class TestPki : IDisposable
{
    /// <summary>The password of every PKCS12 file and encrypted key.</summary>
    public const string Password = "changeit";

    private TestPki(string dir) => Dir = dir;

    /// <summary>The directory the files are in.</summary>
    public string Dir { get; }

    /// <summary>The CA certificate.</summary>
    public X509Certificate2 Ca { get; private set; } = null!;

    private X509Certificate2 OtherCa { get; set; } = null!;

    /// <summary>Makes every certificate and writes the files.</summary>
    public static TestPki Create()
    {
        var pki = new TestPki(Directory.CreateTempSubdirectory("tls-").FullName);
        pki.Ca = MakeCa("CN=Moldau Test CA,O=Moldau");
        pki.OtherCa = MakeCa("CN=Untrusted CA,O=Elsewhere");
        pki.Write("ca", pki.Ca);
        pki.Write("other-ca", pki.OtherCa);
        pki.Write("server", pki.Issue("CN=localhost,OU=Brokers,O=Moldau", server: true, ["localhost"], [IPAddress.Loopback]));
        pki.Write("client", pki.Issue("CN=alice,OU=Clients,O=Moldau,C=CZ", server: false));
        pki.Write("expired", pki.Issue("CN=old,OU=Clients,O=Moldau", server: false, expired: true));
        pki.Write("wronghost", pki.Issue("CN=elsewhere.example,O=Moldau", server: true, ["elsewhere.example"], []));
        pki.Write("untrusted", pki.Issue("CN=mallory,O=Elsewhere", server: false, issuer: pki.OtherCa));
        return pki;
    }

    /// <summary>The path of <paramref name="name"/> in <see cref="Dir"/>, e.g. Path("server.p12").</summary>
    public string Path(string name) => System.IO.Path.Combine(Dir, name);

    /// <summary>A new server certificate (same CA, subject <paramref name="subject"/>) written as server2.*.</summary>
    public X509Certificate2 IssueServer(string name, string subject)
    {
        var cert = Issue(subject, server: true, ["localhost"], [IPAddress.Loopback]);
        Write(name, cert);
        return cert;
    }

    private static X509Certificate2 MakeCa(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-60), DateTimeOffset.UtcNow.AddYears(5));
    }

    private X509Certificate2 Issue(string subject, bool server, string[]? dns = null, IPAddress[]? ips = null, bool expired = false, X509Certificate2? issuer = null)
    {
        issuer ??= Ca;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([server ? new Oid("1.3.6.1.5.5.7.3.1") : new Oid("1.3.6.1.5.5.7.3.2")], false));
        if (dns is { Length: > 0 } || ips is { Length: > 0 })
        {
            var san = new SubjectAlternativeNameBuilder();
            foreach (var d in dns ?? [])
            {
                san.AddDnsName(d);
            }

            foreach (var ip in ips ?? [])
            {
                san.AddIpAddress(ip);
            }

            request.CertificateExtensions.Add(san.Build());
        }

        var notBefore = expired ? DateTimeOffset.UtcNow.AddDays(-30) : DateTimeOffset.UtcNow.AddDays(-1);
        var notAfter = expired ? DateTimeOffset.UtcNow.AddDays(-2) : DateTimeOffset.UtcNow.AddYears(1);
        var serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using var signed = request.Create(issuer, notBefore, notAfter, serial);
        return signed.CopyWithPrivateKey(key);
    }

    // name.p12 (certificate, key, and the CA for leaves), name.pem (key then certificate chain, as
    // Kafka's PEM keystore), name-cert.pem, name-key.pem, name-key-enc.pem (PKCS#8 encrypted).
    private void Write(string name, X509Certificate2 cert)
    {
        var isCa = cert.Extensions.OfType<X509BasicConstraintsExtension>().Any(b => b.CertificateAuthority);
        var collection = new X509Certificate2Collection(cert);
        if (!isCa)
        {
            collection.Add(X509CertificateLoader.LoadCertificate(Ca.RawData));
        }

        File.WriteAllBytes(Path(name + ".p12"), collection.Export(X509ContentType.Pkcs12, Password)!);
        var certPem = cert.ExportCertificatePem() + "\n";
        File.WriteAllText(Path(name + "-cert.pem"), certPem);
        var key = cert.GetECDsaPrivateKey()!;
        var keyPem = key.ExportPkcs8PrivateKeyPem() + "\n";
        File.WriteAllText(Path(name + "-key.pem"), keyPem);
        var encrypted = key.ExportEncryptedPkcs8PrivateKeyPem(Password, new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 10_000)) + "\n";
        File.WriteAllText(Path(name + "-key-enc.pem"), encrypted);
        File.WriteAllText(Path(name + ".pem"), keyPem + certPem + (isCa ? string.Empty : Ca.ExportCertificatePem() + "\n"));
    }

    /// <summary>Removes the files.</summary>
    public void Dispose()
    {
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
