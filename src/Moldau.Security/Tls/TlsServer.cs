using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Moldau.Security.Tls;

/// <summary>What a check of the TLS files found.</summary>
public enum TlsReload
{
    /// <summary>No file changed.</summary>
    Unchanged,

    /// <summary>Files changed and the new material is in use for new handshakes.</summary>
    Reloaded,

    /// <summary>Files changed but do not load; the old material stays in use.</summary>
    Failed,
}

/// <summary>
/// The server side of one TLS listener: the settings, the current certificate material (swapped
/// whole when the keystore or truststore files change, so a handshake sees either the old or the
/// new, never a mix), the options for each handshake, and the principal of a client certificate.
/// </summary>
public sealed class TlsServer
{
    private readonly CipherSuitesPolicy? _ciphers;
    private TlsMaterial _material;
    private FileStamp[] _stamps;

    private TlsServer(TlsSettings settings, TlsMaterial material)
    {
        Settings = settings;
        _material = material;
        _stamps = Stamps(settings);
        if (settings.CipherSuites is { } suites && (OperatingSystem.IsLinux() || OperatingSystem.IsMacOS()))
        {
            _ciphers = new CipherSuitesPolicy(suites);
        }
    }

    /// <summary>The listener's settings.</summary>
    public TlsSettings Settings { get; }

    /// <summary>The material new handshakes use.</summary>
    public TlsMaterial Material => Volatile.Read(ref _material);

    /// <summary>Loads the material; throws <see cref="TlsConfigException"/> when it can't.</summary>
    public static TlsServer Create(TlsSettings settings) => new(settings, TlsMaterial.Load(settings));

    /// <summary>
    /// Loads the material again when the keystore or truststore file changed (modification time or
    /// size) since the last check; on failure keeps the old and returns the reason in <paramref name="error"/>.
    /// </summary>
    public TlsReload CheckFiles(out string? error)
    {
        error = null;
        var now = Stamps(Settings);
        if (now.AsSpan().SequenceEqual(_stamps))
        {
            return TlsReload.Unchanged;
        }

        // Remembered before loading: a bad file is reported once, and retried when it changes again.
        _stamps = now;
        try
        {
            Volatile.Write(ref _material, TlsMaterial.Load(Settings));
            return TlsReload.Reloaded;
        }
        catch (TlsConfigException e)
        {
            error = e.Message;
            return TlsReload.Failed;
        }
    }

    /// <summary>
    /// The options for one handshake, with the current material; <paramref name="verdict"/> receives
    /// why a client certificate was refused.
    /// </summary>
    public SslServerAuthenticationOptions Options(ClientCertificateVerdict verdict)
    {
        var material = Material;
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = material.Context,
            EnabledSslProtocols = Settings.Protocols,
            CipherSuitesPolicy = _ciphers,
            ClientCertificateRequired = Settings.ClientAuth != ClientAuth.None,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            AllowRenegotiation = false,

            // No resumption: .NET shares the session cache between servers with the same
            // certificate, so a session made where no client certificate was asked for (another
            // listener, or before a reload) would resume here without one (found by
            // TlsServerTests: User:ANONYMOUS under requested, a refusal under required). Kafka
            // clients hold their connections, so the full handshake costs little.
            AllowTlsResume = false,
            RemoteCertificateValidationCallback = verdict.Validate,
        };
        if (material.Trusted is { } trusted)
        {
            var policy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
            };
            policy.CustomTrustStore.AddRange(trusted);
            options.CertificateChainPolicy = policy;
        }

        verdict.ClientAuth = Settings.ClientAuth;
        return options;
    }

    /// <summary>
    /// The principal of a client that presented <paramref name="certificate"/> (null: none, which
    /// is User:ANONYMOUS as in Kafka), by ssl.principal.mapping.rules; null when no rule applies.
    /// </summary>
    public string? PrincipalOf(X509Certificate? certificate)
    {
        if (certificate is null)
        {
            return "User:ANONYMOUS";
        }

        var cert = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        var name = DistinguishedName.Format(cert.SubjectName);
        return Settings.PrincipalMapper.GetName(name) is { } mapped ? "User:" + mapped : null;
    }

    private readonly record struct FileStamp(string Path, long Ticks, long Length);

    private static FileStamp[] Stamps(TlsSettings s) =>
        [.. new[] { s.KeystoreLocation, s.TruststoreLocation }.OfType<string>().Select(p =>
        {
            var info = new FileInfo(p);
            return info.Exists ? new FileStamp(p, info.LastWriteTimeUtc.Ticks, info.Length) : new FileStamp(p, 0, -1);
        })];
}

/// <summary>
/// Decides on the client's certificate during one handshake, and keeps why it refused one (the
/// handshake's exception says only that the callback refused).
/// </summary>
public sealed class ClientCertificateVerdict
{
    /// <summary>The listener's ssl.client.auth.</summary>
    public ClientAuth ClientAuth { get; set; }

    /// <summary>Why the certificate was refused; null when it was not.</summary>
    public string? Refusal { get; private set; }

    /// <summary>Whether the client presented a certificate.</summary>
    public bool Presented { get; private set; }

    /// <summary>The RemoteCertificateValidationCallback.</summary>
    public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, SslPolicyErrors errors)
    {
        if (certificate is null)
        {
            if (ClientAuth == ClientAuth.Required)
            {
                Refusal = "no client certificate (ssl.client.auth=required)";
                return false;
            }

            return true;
        }

        Presented = true;

        // A server does not check its client's host name (endpoint identification is the client's).
        errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
        if (errors == SslPolicyErrors.None)
        {
            return true;
        }

        var status = chain is null
            ? errors.ToString()
            : string.Join(", ", chain.ChainStatus.Select(s => s.Status).Distinct().Select(s => s.ToString()));
        Refusal = $"client certificate '{(certificate as X509Certificate2)?.Subject ?? certificate.Subject}' refused: {(status.Length > 0 ? status : errors.ToString())}";
        return false;
    }
}
