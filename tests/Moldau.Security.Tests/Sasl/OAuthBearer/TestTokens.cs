using System.Buffers.Text;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Time.Testing;
using Moldau.Security.Sasl;

namespace Moldau.Security.Tests.Sasl.OAuthBearer;

/// <summary>A signing key made by the test, its JWK, and tokens signed with it.</summary>
internal sealed class TestKey : IDisposable
{
    private readonly RSA? _rsa;
    private readonly ECDsa? _ec;

    private TestKey(string alg, string? kid, RSA? rsa, ECDsa? ec)
    {
        Alg = alg;
        Kid = kid;
        _rsa = rsa;
        _ec = ec;
    }

    public string Alg { get; }

    public string? Kid { get; }

    /// <summary>A fresh key for <paramref name="alg"/> (RSA 2048 for RS*/PS*, the alg's curve for ES*).</summary>
    public static TestKey Create(string alg, string? kid = null, int rsaBits = 2048) => alg[..2] switch
    {
        "RS" or "PS" => new TestKey(alg, kid, RSA.Create(rsaBits), null),
        _ => new TestKey(alg, kid, null, ECDsa.Create(alg switch
        {
            "ES256" => ECCurve.NamedCurves.nistP256,
            "ES384" => ECCurve.NamedCurves.nistP384,
            _ => ECCurve.NamedCurves.nistP521,
        })),
    };

    /// <summary>The public JWK, with <c>alg</c> and <c>use</c> unless <paramref name="bare"/>.</summary>
    public Dictionary<string, object> Jwk(bool bare = false)
    {
        var jwk = new Dictionary<string, object>();
        if (_rsa is not null)
        {
            var p = _rsa.ExportParameters(false);
            jwk["kty"] = "RSA";
            jwk["n"] = Tokens.B64(p.Modulus!);
            jwk["e"] = Tokens.B64(p.Exponent!);
        }
        else
        {
            var p = _ec!.ExportParameters(false);
            jwk["kty"] = "EC";
            jwk["crv"] = _ec.KeySize switch { 256 => "P-256", 384 => "P-384", _ => "P-521" };
            jwk["x"] = Tokens.B64(p.Q.X!);
            jwk["y"] = Tokens.B64(p.Q.Y!);
        }

        if (Kid is not null)
        {
            jwk["kid"] = Kid;
        }

        if (!bare)
        {
            jwk["alg"] = Alg;
            jwk["use"] = "sig";
        }

        return jwk;
    }

    /// <summary>A JWS over <paramref name="claims"/> signed with this key (header alg, kid and <paramref name="header"/>).</summary>
    public string Sign(Dictionary<string, object?> claims, string? alg = null, Dictionary<string, object?>? header = null)
    {
        alg ??= Alg;
        var h = new Dictionary<string, object?> { ["alg"] = alg, ["typ"] = "JWT" };
        if (Kid is not null)
        {
            h["kid"] = Kid;
        }

        foreach (var (k, v) in header ?? [])
        {
            h[k] = v;
        }

        var input = Tokens.B64(JsonSerializer.SerializeToUtf8Bytes(h)) + "." + Tokens.B64(JsonSerializer.SerializeToUtf8Bytes(claims));
        var data = Encoding.ASCII.GetBytes(input);
        var hash = alg[2..] switch { "256" => HashAlgorithmName.SHA256, "384" => HashAlgorithmName.SHA384, _ => HashAlgorithmName.SHA512 };
        var signature = _rsa is not null
            ? _rsa.SignData(data, hash, alg.StartsWith("PS", StringComparison.Ordinal) ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1)
            : _ec!.SignData(data, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return input + "." + Tokens.B64(signature);
    }

    public void Dispose()
    {
        _rsa?.Dispose();
        _ec?.Dispose();
    }
}

/// <summary>Token, JWKS and client-message helpers.</summary>
internal static class Tokens
{
    /// <summary>The tests' "now": 2026-12-06 12:00:00 UTC.</summary>
    public static readonly DateTimeOffset Now = new(2026, 12, 6, 12, 0, 0, TimeSpan.Zero);

    public static FakeTimeProvider Clock() => new(Now);

    public static string B64(byte[] bytes) => Base64Url.EncodeToString(bytes);

    public static long Seconds(DateTimeOffset t) => t.ToUnixTimeSeconds();

    /// <summary>Claims valid at <see cref="Now"/>: sub, iat now, exp in an hour, plus <paramref name="extra"/> (null values remove).</summary>
    public static Dictionary<string, object?> Claims(string sub = "alice", Dictionary<string, object?>? extra = null)
    {
        var claims = new Dictionary<string, object?>
        {
            ["sub"] = sub,
            ["iat"] = Seconds(Now),
            ["exp"] = Seconds(Now.AddHours(1)),
        };
        foreach (var (k, v) in extra ?? [])
        {
            if (v is null)
            {
                claims.Remove(k);
            }
            else
            {
                claims[k] = v;
            }
        }

        return claims;
    }

    /// <summary>
    /// An unsecured JWS as librdkafka's default token refresh makes it for
    /// <c>sasl.oauthbearer.config=principal=&lt;p&gt;</c>: the header <c>eyJhbGciOiJub25lIn0</c>
    /// (<c>{"alg":"none"}</c>), claims with fractional iat and exp (milliseconds), an empty signature.
    /// </summary>
    public static string LibrdkafkaUnsecured(string principal, DateTimeOffset now, int lifeSeconds = 3600, string? scopeJson = null)
    {
        var seconds = now.ToUnixTimeMilliseconds() / 1000.0;
        var claims = string.Format(CultureInfo.InvariantCulture, "{{\"sub\":\"{0}\",\"iat\":{1:F3},\"exp\":{2:F3}{3}}}", principal, seconds, seconds + lifeSeconds, scopeJson);
        return "eyJhbGciOiJub25lIn0." + B64(Encoding.UTF8.GetBytes(claims)) + ".";
    }

    /// <summary>An unsecured JWS over <paramref name="claims"/>.</summary>
    public static string Unsecured(Dictionary<string, object?> claims) =>
        B64("{\"alg\":\"none\"}"u8.ToArray()) + "." + B64(JsonSerializer.SerializeToUtf8Bytes(claims)) + ".";

    /// <summary>A JWK Set document holding <paramref name="keys"/>.</summary>
    public static string Jwks(params object[] keys) => JsonSerializer.Serialize(new Dictionary<string, object> { ["keys"] = keys });

    /// <summary>The client first message both the Java client and librdkafka send: <c>n,,\x01auth=Bearer &lt;t&gt;\x01[k=v\x01...]\x01</c>.</summary>
    public static byte[] FirstMessage(string token, string extensions = "", string gs2 = "n,,") =>
        Encoding.ASCII.GetBytes(gs2 + "\u0001auth=Bearer " + token + "\u0001" + extensions + "\u0001");

    /// <summary>Runs one exchange: the first message, and the 0x01 answer to an error challenge.</summary>
    public static (SaslStep First, SaslStep? Final) Exchange(ISaslServerFactory factory, string token)
    {
        var server = factory.Create();
        var first = server.Step(FirstMessage(token));
        return first.Outcome == SaslOutcome.Continue ? (first, server.Step([0x01])) : (first, null);
    }
}
