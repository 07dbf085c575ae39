using System.Net.Security;
using System.Security.Authentication;

namespace Moldau.Security.Tls;

/// <summary>Thrown when a listener's TLS settings or files can't be used; the broker refuses to start.</summary>
public sealed class TlsConfigException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>Kafka's <c>ssl.client.auth</c>.</summary>
public enum ClientAuth
{
    /// <summary>No client certificate is asked for.</summary>
    None,

    /// <summary>Asked for; a client without one connects as User:ANONYMOUS.</summary>
    Requested,

    /// <summary>A client without a trusted certificate is refused.</summary>
    Required,
}

/// <summary>
/// One listener's TLS settings, read with Kafka's keys (each also as
/// <c>listener.name.&lt;listener&gt;.&lt;key&gt;</c>, resolved by the caller's getter).
/// </summary>
public sealed record TlsSettings
{
    /// <summary>The keys read here, for the broker's list of keys it knows.</summary>
    public static readonly IReadOnlyList<string> Keys =
    [
        "ssl.keystore.type", "ssl.keystore.location", "ssl.keystore.password", "ssl.key.password",
        "ssl.keystore.certificate.chain", "ssl.keystore.key",
        "ssl.truststore.type", "ssl.truststore.location", "ssl.truststore.password", "ssl.truststore.certificates",
        "ssl.client.auth", "ssl.enabled.protocols", "ssl.cipher.suites", "ssl.endpoint.identification.algorithm",
        "ssl.principal.mapping.rules", "ssl.protocol", "ssl.keymanager.algorithm", "ssl.trustmanager.algorithm",
        "ssl.secure.random.implementation", "ssl.provider", "ssl.engine.factory.class", "ssl.allow.dn.changes", "ssl.allow.san.changes",
        "moldau.ssl.reload.interval.ms",
    ];

    /// <summary>PKCS12 or PEM; null: from the file (PEM text or PKCS12).</summary>
    public string? KeystoreType { get; init; }

    /// <summary>ssl.keystore.location.</summary>
    public string? KeystoreLocation { get; init; }

    /// <summary>ssl.keystore.password.</summary>
    public string? KeystorePassword { get; init; }

    /// <summary>ssl.key.password: the private key's (PEM: of an encrypted key).</summary>
    public string? KeyPassword { get; init; }

    /// <summary>ssl.keystore.certificate.chain: PEM certificates inline.</summary>
    public string? KeystoreCertificateChain { get; init; }

    /// <summary>ssl.keystore.key: a PEM private key inline.</summary>
    public string? KeystoreKey { get; init; }

    /// <summary>PKCS12 or PEM; null: from the file.</summary>
    public string? TruststoreType { get; init; }

    /// <summary>ssl.truststore.location.</summary>
    public string? TruststoreLocation { get; init; }

    /// <summary>ssl.truststore.password.</summary>
    public string? TruststorePassword { get; init; }

    /// <summary>ssl.truststore.certificates: PEM certificates inline.</summary>
    public string? TruststoreCertificates { get; init; }

    /// <summary>ssl.client.auth.</summary>
    public ClientAuth ClientAuth { get; init; }

    /// <summary>ssl.enabled.protocols (default TLSv1.2,TLSv1.3).</summary>
    public SslProtocols Protocols { get; init; } = SslProtocols.Tls12 | SslProtocols.Tls13;

    /// <summary>ssl.cipher.suites; null: the system's defaults.</summary>
    public IReadOnlyList<TlsCipherSuite>? CipherSuites { get; init; }

    /// <summary>ssl.endpoint.identification.algorithm (https or empty); a server does not check its clients' host names.</summary>
    public string EndpointIdentificationAlgorithm { get; init; } = "https";

    /// <summary>ssl.principal.mapping.rules.</summary>
    public SslPrincipalMapper PrincipalMapper { get; init; } = SslPrincipalMapper.Default;

    /// <summary>How often the keystore and truststore files are checked for a change (moldau.ssl.reload.interval.ms, default 5000; 0: never).</summary>
    public long ReloadIntervalMs { get; init; } = 5000;

    /// <summary>Reads the settings through <paramref name="get"/> (a listener's view of server.properties).</summary>
    public static TlsSettings Parse(Func<string, string?> get)
    {
        string? Text(string key) => get(key) is { Length: > 0 } v ? v : null;

        var clientAuth = (Text("ssl.client.auth") ?? "none").ToLowerInvariant() switch
        {
            "none" => ClientAuth.None,
            "requested" => ClientAuth.Requested,
            "required" => ClientAuth.Required,
            var other => throw new TlsConfigException($"ssl.client.auth: '{other}' is not none, requested or required"),
        };

        var protocols = SslProtocols.None;
        foreach (var p in (Text("ssl.enabled.protocols") ?? "TLSv1.2,TLSv1.3").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            protocols |= p switch
            {
                "TLSv1.2" => SslProtocols.Tls12,
                "TLSv1.3" => SslProtocols.Tls13,
                _ => throw new TlsConfigException($"ssl.enabled.protocols: '{p}' is not supported (TLSv1.2, TLSv1.3)"),
            };
        }

        if (protocols == SslProtocols.None)
        {
            throw new TlsConfigException("ssl.enabled.protocols: no protocol enabled");
        }

        List<TlsCipherSuite>? suites = null;
        if (Text("ssl.cipher.suites") is { } cipherText)
        {
            suites = [];
            foreach (var name in cipherText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                suites.Add(CipherSuite(name));
            }

            if (suites.Count == 0)
            {
                suites = null;
            }
            else if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
            {
                throw new TlsConfigException("ssl.cipher.suites: choosing cipher suites is supported on Linux only");
            }
        }

        var endpoint = get("ssl.endpoint.identification.algorithm") ?? "https";
        if (endpoint.Length > 0 && !endpoint.Equals("https", StringComparison.OrdinalIgnoreCase))
        {
            throw new TlsConfigException($"ssl.endpoint.identification.algorithm: '{endpoint}' is not https or empty");
        }

        SslPrincipalMapper mapper;
        try
        {
            mapper = SslPrincipalMapper.Parse(Text("ssl.principal.mapping.rules"));
        }
        catch (FormatException e)
        {
            throw new TlsConfigException(e.Message);
        }

        var reload = 5000L;
        if (Text("moldau.ssl.reload.interval.ms") is { } r && (!long.TryParse(r, System.Globalization.CultureInfo.InvariantCulture, out reload) || reload < 0))
        {
            throw new TlsConfigException($"moldau.ssl.reload.interval.ms: '{r}' is not a number of milliseconds >= 0");
        }

        return new TlsSettings
        {
            KeystoreType = Text("ssl.keystore.type")?.ToUpperInvariant(),
            KeystoreLocation = Text("ssl.keystore.location"),
            KeystorePassword = Text("ssl.keystore.password"),
            KeyPassword = Text("ssl.key.password"),
            KeystoreCertificateChain = Text("ssl.keystore.certificate.chain"),
            KeystoreKey = Text("ssl.keystore.key"),
            TruststoreType = Text("ssl.truststore.type")?.ToUpperInvariant(),
            TruststoreLocation = Text("ssl.truststore.location"),
            TruststorePassword = Text("ssl.truststore.password"),
            TruststoreCertificates = Text("ssl.truststore.certificates"),
            ClientAuth = clientAuth,
            Protocols = protocols,
            CipherSuites = suites,
            EndpointIdentificationAlgorithm = endpoint,
            PrincipalMapper = mapper,
            ReloadIntervalMs = reload,
        };
    }

    /// <summary>
    /// A cipher suite by its Kafka (JSSE) name, which is the IANA name .NET's
    /// <see cref="TlsCipherSuite"/> uses (TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256).
    /// </summary>
    public static TlsCipherSuite CipherSuite(string name)
    {
        // Enum.TryParse would also take numbers; only names are Kafka's.
        if (name.Length > 0 && !char.IsAsciiDigit(name[0]) && Enum.TryParse<TlsCipherSuite>(name, ignoreCase: false, out var suite) && Enum.IsDefined(suite))
        {
            return suite;
        }

        throw new TlsConfigException($"ssl.cipher.suites: unknown cipher suite '{name}' (use IANA names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 or TLS_AES_128_GCM_SHA256)");
    }
}
