namespace Moldau.Security;

/// <summary>Kafka's listener security protocols, as <c>listener.security.protocol.map</c> names them.</summary>
public static class SecurityProtocol
{
    /// <summary>No TLS, no SASL.</summary>
    public const string Plaintext = "PLAINTEXT";

    /// <summary>TLS, no SASL.</summary>
    public const string Ssl = "SSL";

    /// <summary>SASL over a clear connection.</summary>
    public const string SaslPlaintext = "SASL_PLAINTEXT";

    /// <summary>SASL over TLS.</summary>
    public const string SaslSsl = "SASL_SSL";

    /// <summary>Whether the protocol wraps the connection in TLS.</summary>
    public static bool UsesTls(string protocol) => protocol is Ssl or SaslSsl;

    /// <summary>Whether the protocol requires a SASL exchange before other APIs.</summary>
    public static bool UsesSasl(string protocol) => protocol is SaslPlaintext or SaslSsl;
}
