using System.Security.Cryptography.X509Certificates;
using System.Text.RegularExpressions;

namespace Moldau.Cli.Client;

/// <summary>
/// The connection settings Kafka clients take (a --config properties file): bootstrap.servers,
/// security.protocol, sasl.mechanism with sasl.jaas.config or sasl.username/sasl.password, and the
/// ssl.* locations in PEM (librdkafka's names) or PKCS#12 (the Java clients' keystore/truststore).
/// </summary>
public sealed partial class ClientSettings
{
    /// <summary>host:port pairs to start from.</summary>
    public List<(string Host, int Port)> Bootstrap { get; } = [];

    /// <summary>PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.</summary>
    public string SecurityProtocol { get; set; } = "PLAINTEXT";

    /// <summary>PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.</summary>
    public string SaslMechanism { get; set; } = "PLAIN";

    /// <summary>SASL user name.</summary>
    public string? Username { get; set; }

    /// <summary>SASL password.</summary>
    public string? Password { get; set; }

    /// <summary>Extra trusted CA certificates (empty: the system's).</summary>
    public X509Certificate2Collection TrustedCas { get; } = [];

    /// <summary>The client certificate for TLS client authentication, if any.</summary>
    public X509Certificate2? ClientCertificate { get; set; }

    /// <summary>False when ssl.endpoint.identification.algorithm is empty or none.</summary>
    public bool VerifyHostname { get; set; } = true;

    /// <summary>How long one request may take.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>True for SSL and SASL_SSL.</summary>
    public bool UsesTls => SecurityProtocol is "SSL" or "SASL_SSL";

    /// <summary>True for SASL_PLAINTEXT and SASL_SSL.</summary>
    public bool UsesSasl => SecurityProtocol is "SASL_PLAINTEXT" or "SASL_SSL";

    /// <summary>Reads <paramref name="propertiesPath"/> (if any); <paramref name="bootstrap"/> wins over bootstrap.servers.</summary>
    public static ClientSettings Load(string? propertiesPath, string? bootstrap)
    {
        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        if (propertiesPath is not null)
        {
            if (!File.Exists(propertiesPath))
            {
                throw new CliException(ExitCodes.Usage, $"config file '{propertiesPath}' not found");
            }

            foreach (var raw in File.ReadAllLines(propertiesPath))
            {
                var line = raw.Trim();
                if (line.Length == 0 || line[0] is '#' or '!')
                {
                    continue;
                }

                var eq = line.IndexOfAny(['=', ':']);
                if (eq > 0)
                {
                    props[line[..eq].Trim()] = line[(eq + 1)..].Trim();
                }
            }
        }

        var s = new ClientSettings();
        var servers = bootstrap ?? props.GetValueOrDefault("bootstrap.servers") ?? Environment.GetEnvironmentVariable("MOLDAU_BOOTSTRAP") ?? "localhost:9092";
        foreach (var part in servers.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            s.Bootstrap.Add(ParseHostPort(part));
        }

        if (props.TryGetValue("security.protocol", out var protocol))
        {
            s.SecurityProtocol = protocol.ToUpperInvariant();
            if (s.SecurityProtocol is not ("PLAINTEXT" or "SSL" or "SASL_PLAINTEXT" or "SASL_SSL"))
            {
                throw new CliException(ExitCodes.Usage, $"security.protocol '{protocol}' is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL");
            }
        }

        if (props.TryGetValue("sasl.mechanism", out var mechanism) || props.TryGetValue("sasl.mechanisms", out mechanism))
        {
            s.SaslMechanism = mechanism.ToUpperInvariant();
            if (s.SaslMechanism is not ("PLAIN" or "SCRAM-SHA-256" or "SCRAM-SHA-512"))
            {
                throw new CliException(ExitCodes.Usage, $"sasl.mechanism '{mechanism}' is not supported by the CLI (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)");
            }
        }

        s.Username = props.GetValueOrDefault("sasl.username");
        s.Password = props.GetValueOrDefault("sasl.password");
        if (props.TryGetValue("sasl.jaas.config", out var jaas))
        {
            s.Username ??= JaasOption(jaas, "username");
            s.Password ??= JaasOption(jaas, "password");
        }

        if (props.TryGetValue("ssl.endpoint.identification.algorithm", out var ident) && ident.Trim() is "" or "none")
        {
            s.VerifyHostname = false;
        }

        if (props.TryGetValue("ssl.ca.location", out var ca))
        {
            s.TrustedCas.ImportFromPemFile(ca);
        }

        if (props.TryGetValue("ssl.truststore.location", out var truststore))
        {
            if (props.GetValueOrDefault("ssl.truststore.type", "PEM").Equals("PKCS12", StringComparison.OrdinalIgnoreCase))
            {
                s.TrustedCas.AddRange(X509CertificateLoader.LoadPkcs12CollectionFromFile(truststore, props.GetValueOrDefault("ssl.truststore.password")));
            }
            else
            {
                s.TrustedCas.ImportFromPemFile(truststore);
            }
        }

        if (props.TryGetValue("ssl.certificate.location", out var cert))
        {
            s.ClientCertificate = X509Certificate2.CreateFromPemFile(cert, props.GetValueOrDefault("ssl.key.location"));
        }
        else if (props.TryGetValue("ssl.keystore.location", out var keystore))
        {
            s.ClientCertificate = X509CertificateLoader.LoadPkcs12FromFile(keystore, props.GetValueOrDefault("ssl.keystore.password"));
        }

        if (props.TryGetValue("request.timeout.ms", out var timeout) && int.TryParse(timeout, out var ms) && ms > 0)
        {
            s.RequestTimeout = TimeSpan.FromMilliseconds(ms);
        }

        if (s.UsesSasl && (s.Username is null || s.Password is null))
        {
            throw new CliException(ExitCodes.Usage, $"{s.SecurityProtocol} needs sasl.username/sasl.password or sasl.jaas.config with username and password");
        }

        return s;
    }

    /// <summary>"host:port", "[v6]:port" or "host" (port 9092).</summary>
    public static (string Host, int Port) ParseHostPort(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon < 0 || value.EndsWith(']'))
        {
            return (value.Trim('[', ']'), 9092);
        }

        if (!int.TryParse(value[(colon + 1)..], out var port) || port is <= 0 or > 65535)
        {
            throw new CliException(ExitCodes.Usage, $"'{value}' is not host:port");
        }

        return (value[..colon].Trim('[', ']'), port);
    }

    private static string? JaasOption(string jaas, string name)
    {
        var m = JaasPattern().Matches(jaas).FirstOrDefault(m => m.Groups[1].Value == name);
        return m?.Groups[2].Value;
    }

    [GeneratedRegex("""(\w+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*""")]
    private static partial Regex JaasPattern();
}
