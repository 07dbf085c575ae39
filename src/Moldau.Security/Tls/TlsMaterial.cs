using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Moldau.Security.Tls;

/// <summary>
/// A listener's certificates as loaded once: the server certificate with its chain (ready for
/// handshakes), and the certificates trusted to sign client certificates (null: the system's).
/// Loaded again when the files change (see <see cref="TlsServer"/>).
/// </summary>
public sealed class TlsMaterial
{
    private TlsMaterial(SslStreamCertificateContext context, X509Certificate2 certificate, X509Certificate2Collection? trusted)
    {
        Context = context;
        Certificate = certificate;
        Trusted = trusted;
    }

    /// <summary>The server certificate and its intermediates, for SslStream.</summary>
    public SslStreamCertificateContext Context { get; }

    /// <summary>The server certificate.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The truststore's certificates; null when none is configured (the system's roots then).</summary>
    public X509Certificate2Collection? Trusted { get; }

    /// <summary>Loads the keystore and truststore <paramref name="settings"/> name; throws <see cref="TlsConfigException"/> saying what is wrong.</summary>
    public static TlsMaterial Load(TlsSettings settings)
    {
        var (leaf, chain) = LoadKeystore(settings);
        var trusted = LoadTruststore(settings);
        return new TlsMaterial(SslStreamCertificateContext.Create(leaf, chain, offline: true), leaf, trusted);
    }

    private static (X509Certificate2 Leaf, X509Certificate2Collection Chain) LoadKeystore(TlsSettings s)
    {
        if (s.KeystoreCertificateChain is { } inlineChain)
        {
            if (s.KeystoreKey is not { } inlineKey)
            {
                throw new TlsConfigException("ssl.keystore.certificate.chain is set but ssl.keystore.key is not");
            }

            return FromPem(inlineChain, inlineKey, s.KeyPassword, "ssl.keystore.certificate.chain/ssl.keystore.key");
        }

        if (s.KeystoreLocation is not { } location)
        {
            throw new TlsConfigException("a TLS listener needs ssl.keystore.location (or ssl.keystore.certificate.chain and ssl.keystore.key)");
        }

        var bytes = Read("ssl.keystore.location", location);
        var type = StoreType("ssl.keystore", s.KeystoreType, location, bytes);
        if (type == "PEM")
        {
            var text = Encoding.UTF8.GetString(bytes);
            return FromPem(text, text, s.KeyPassword, location);
        }

        X509Certificate2Collection all;
        try
        {
            all = X509CertificateLoader.LoadPkcs12Collection(bytes, s.KeystorePassword, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException) when (s.KeyPassword is { } keyPassword && keyPassword != s.KeystorePassword)
        {
            all = LoadPkcs12(bytes, keyPassword, location, "ssl.key.password");
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigException($"ssl.keystore.location: cannot read PKCS12 keystore {location} (wrong ssl.keystore.password?): {e.Message}", e);
        }

        var leaf = all.FirstOrDefault(c => c.HasPrivateKey)
            ?? throw new TlsConfigException($"ssl.keystore.location: {location} holds no certificate with a private key");
        var chain = new X509Certificate2Collection();
        foreach (var c in all)
        {
            if (!ReferenceEquals(c, leaf))
            {
                chain.Add(c);
            }
        }

        return (leaf, chain);
    }

    private static X509Certificate2Collection LoadPkcs12(byte[] bytes, string? password, string location, string key)
    {
        try
        {
            return X509CertificateLoader.LoadPkcs12Collection(bytes, password, X509KeyStorageFlags.EphemeralKeySet);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigException($"{key}: cannot read PKCS12 store {location} (wrong password?): {e.Message}", e);
        }
    }

    private static (X509Certificate2 Leaf, X509Certificate2Collection Chain) FromPem(string certificates, string key, string? keyPassword, string where)
    {
        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPem(certificates);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigException($"{where}: cannot read the PEM certificates: {e.Message}", e);
        }

        if (chain.Count == 0)
        {
            throw new TlsConfigException($"{where}: no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }

        var encrypted = key.Contains("-----BEGIN ENCRYPTED PRIVATE KEY-----", StringComparison.Ordinal);
        if (!encrypted && !key.Contains("PRIVATE KEY-----", StringComparison.Ordinal))
        {
            throw new TlsConfigException($"{where}: no PEM private key (-----BEGIN PRIVATE KEY----- or ENCRYPTED PRIVATE KEY)");
        }

        if (encrypted && keyPassword is null)
        {
            throw new TlsConfigException($"{where}: the private key is encrypted and ssl.key.password is not set");
        }

        // The first certificate is the server's: the key goes with it; the rest are its chain.
        var certPem = chain[0].ExportCertificatePem();
        X509Certificate2 leaf;
        try
        {
            leaf = encrypted ? X509Certificate2.CreateFromEncryptedPem(certPem, key, keyPassword) : X509Certificate2.CreateFromPem(certPem, key);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigException($"{where}: the private key does not load or does not match the first certificate{(encrypted ? " (wrong ssl.key.password?)" : string.Empty)}: {e.Message}", e);
        }

        chain.RemoveAt(0);
        return (leaf, chain);
    }

    private static X509Certificate2Collection? LoadTruststore(TlsSettings s)
    {
        var trusted = new X509Certificate2Collection();
        if (s.TruststoreCertificates is { } inline)
        {
            ImportPem(trusted, inline, "ssl.truststore.certificates");
            return trusted;
        }

        if (s.TruststoreLocation is not { } location)
        {
            return null;
        }

        var bytes = Read("ssl.truststore.location", location);
        if (StoreType("ssl.truststore", s.TruststoreType, location, bytes) == "PEM")
        {
            ImportPem(trusted, Encoding.UTF8.GetString(bytes), location);
            return trusted;
        }

        trusted.AddRange(LoadPkcs12(bytes, s.TruststorePassword, location, "ssl.truststore.password"));
        if (trusted.Count == 0)
        {
            throw new TlsConfigException($"ssl.truststore.location: {location} holds no certificate");
        }

        return trusted;
    }

    private static void ImportPem(X509Certificate2Collection into, string pem, string where)
    {
        try
        {
            into.ImportFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw new TlsConfigException($"{where}: cannot read the PEM certificates: {e.Message}", e);
        }

        if (into.Count == 0)
        {
            throw new TlsConfigException($"{where}: no PEM certificate (-----BEGIN CERTIFICATE-----)");
        }
    }

    private static byte[] Read(string key, string location)
    {
        try
        {
            return File.ReadAllBytes(location);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TlsConfigException($"{key}: cannot read {location}: {e.Message}", e);
        }
    }

    // The store's type: as configured (PKCS12, PEM), else from its bytes. A JKS store (configured
    // or recognized by its magic number) is refused with the command that converts it.
    private static string StoreType(string prefix, string? configured, string location, byte[] bytes)
    {
        var isJks = bytes.Length >= 4 && bytes[0] == 0xFE && bytes[1] == 0xED && bytes[2] == 0xFE && bytes[3] == 0xED;
        if (configured is "JKS" || isJks)
        {
            throw new TlsConfigException(
                $"{prefix}.location: {location} is a JKS store, which Moldau does not read; convert it with "
                + $"`keytool -importkeystore -srckeystore {location} -srcstoretype JKS -destkeystore {Path.ChangeExtension(location, ".p12")} -deststoretype PKCS12` "
                + $"and set {prefix}.type=PKCS12 and {prefix}.location to the new file");
        }

        if (configured is null)
        {
            return bytes.AsSpan().IndexOf("-----BEGIN "u8) >= 0 ? "PEM" : "PKCS12";
        }

        return configured is "PKCS12" or "PEM"
            ? configured
            : throw new TlsConfigException($"{prefix}.type: '{configured}' is not supported (PKCS12 or PEM)");
    }
}
