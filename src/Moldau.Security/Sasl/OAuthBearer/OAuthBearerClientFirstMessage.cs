using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// The client's first (and only) message of an OAUTHBEARER exchange, RFC 7628 §3.1, with the SASL
/// extensions of KIP-342 as further key/value pairs.
/// <code>
///  gs2 header          kvsep  kvpairs, each ended by kvsep                          kvsep
/// +-------------------+------+--------------------+-------------------------------+------+
/// | n,[a=&lt;authzid&gt;], | 0x01 | auth=Bearer &lt;tok&gt;  0x01 | key=value 0x01 ... (extensions) | 0x01 |
/// +-------------------+------+--------------------+-------------------------------+------+
/// </code>
/// The Java client (OAuthBearerClientInitialResponse) and librdkafka both send
/// <c>n,,\x01auth=Bearer &lt;token&gt;\x01</c>, then each extension as <c>key=value\x01</c>, then a final
/// <c>\x01</c>. Keys are 1*ALPHA, values 1*(VCHAR / SP / HTAB / CR / LF) (Kafka requires at least one
/// character, as here); the token is a b64token (Kafka's <c>[-_.a-zA-Z0-9]+</c>, which also admits
/// every JWT compact serialization). The authzid is a saslname whose <c>=2C</c> and <c>=3D</c>
/// stand for <c>,</c> and <c>=</c> (RFC 5801).
/// </summary>
public sealed class OAuthBearerClientFirstMessage
{
    private const byte Kvsep = 0x01;

    private OAuthBearerClientFirstMessage(string token, string? authorizationId, IReadOnlyDictionary<string, string> extensions)
    {
        Token = token;
        AuthorizationId = authorizationId;
        Extensions = extensions;
    }

    /// <summary>The bearer token (for Kafka, a JWT compact serialization).</summary>
    public string Token { get; }

    /// <summary>The authzid of the gs2 header, decoded; null when the header has none.</summary>
    public string? AuthorizationId { get; }

    /// <summary>The SASL extensions (every key/value pair but <c>auth</c>), in the order sent.</summary>
    public IReadOnlyDictionary<string, string> Extensions { get; }

    /// <summary>Parses <paramref name="message"/>; on failure <paramref name="error"/> says why (for the log only).</summary>
    public static bool TryParse(ReadOnlySpan<byte> message, [NotNullWhen(true)] out OAuthBearerClientFirstMessage? parsed, [NotNullWhen(false)] out string? error)
    {
        parsed = null;

        // gs2-cb-flag: "n" (client does not support channel binding) or "y" (it does, but thinks
        // the server does not). "p=" asks for channel binding, which OAUTHBEARER in Kafka has not.
        if (message.Length < 2 || message[0] is not ((byte)'n' or (byte)'y') || message[1] != (byte)',')
        {
            error = "the gs2 header does not start with \"n,\"";
            return false;
        }

        var rest = message[2..];
        var comma = rest.IndexOf((byte)',');
        if (comma < 0)
        {
            error = "the gs2 header has no second ','";
            return false;
        }

        string? authzid = null;
        var authzField = rest[..comma];
        if (authzField.Length > 0)
        {
            if (!authzField.StartsWith("a="u8) || !TryDecodeSaslName(authzField[2..], out authzid))
            {
                error = "the gs2 header's authzid is not a=<saslname>";
                return false;
            }
        }

        rest = rest[(comma + 1)..];
        if (rest.Length < 2 || rest[0] != Kvsep || rest[^1] != Kvsep)
        {
            error = "the key/value pairs are not framed by 0x01";
            return false;
        }

        // What is left is *(key=value 0x01) followed by the final 0x01.
        var pairs = rest[1..^1];
        var extensions = new Dictionary<string, string>(StringComparer.Ordinal);
        string? auth = null;
        while (pairs.Length > 0)
        {
            var end = pairs.IndexOf(Kvsep);
            if (end < 0)
            {
                error = "a key/value pair is not ended by 0x01";
                return false;
            }

            var pair = pairs[..end];
            pairs = pairs[(end + 1)..];
            var eq = pair.IndexOf((byte)'=');
            if (eq <= 0 || !IsKey(pair[..eq]) || !IsValue(pair[(eq + 1)..]))
            {
                error = "a key/value pair is malformed (key 1*ALPHA, value 1*(VCHAR / SP / HTAB / CR / LF))";
                return false;
            }

            var key = Encoding.ASCII.GetString(pair[..eq]);
            var value = Encoding.ASCII.GetString(pair[(eq + 1)..]);
            if (key == "auth")
            {
                auth = value;
            }
            else
            {
                extensions[key] = value;
            }
        }

        if (auth is null)
        {
            error = "no auth=Bearer <token> pair";
            return false;
        }

        var space = auth.IndexOf(' ');
        if (space <= 0 || !auth.AsSpan(0, space).Equals("Bearer", StringComparison.OrdinalIgnoreCase))
        {
            error = "the auth value is not \"Bearer <token>\"";
            return false;
        }

        var token = auth[(space + 1)..].TrimStart(' ');
        if (token.Length == 0 || !IsToken(token))
        {
            error = "the bearer token has characters outside [-_.a-zA-Z0-9]";
            return false;
        }

        parsed = new OAuthBearerClientFirstMessage(token, authzid, extensions);
        error = null;
        return true;
    }

    private static bool TryDecodeSaslName(ReadOnlySpan<byte> raw, [NotNullWhen(true)] out string? name)
    {
        name = null;
        if (raw.Length == 0)
        {
            return false;
        }

        var sb = new StringBuilder(raw.Length);
        for (var i = 0; i < raw.Length; i++)
        {
            var b = raw[i];
            if (b == (byte)'=')
            {
                if (raw[i..].StartsWith("=2C"u8))
                {
                    sb.Append(',');
                }
                else if (raw[i..].StartsWith("=3D"u8))
                {
                    sb.Append('=');
                }
                else
                {
                    return false;
                }

                i += 2;
            }
            else if (b is 0 or (byte)',' || b > 0x7F)
            {
                // Kafka's saslname admits ASCII only ([\x01-\x7F] but , and =).
                return false;
            }
            else
            {
                sb.Append((char)b);
            }
        }

        name = sb.ToString();
        return true;
    }

    private static bool IsKey(ReadOnlySpan<byte> key)
    {
        foreach (var b in key)
        {
            if (b is not ((>= (byte)'A' and <= (byte)'Z') or (>= (byte)'a' and <= (byte)'z')))
            {
                return false;
            }
        }

        return key.Length > 0;
    }

    private static bool IsValue(ReadOnlySpan<byte> value)
    {
        foreach (var b in value)
        {
            if (b is not ((>= 0x21 and <= 0x7E) or (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n'))
            {
                return false;
            }
        }

        return value.Length > 0;
    }

    private static bool IsToken(string token)
    {
        foreach (var c in token)
        {
            if (c is not ((>= 'A' and <= 'Z') or (>= 'a' and <= 'z') or (>= '0' and <= '9') or '-' or '_' or '.'))
            {
                return false;
            }
        }

        return true;
    }
}
