using System.Security.Cryptography;
using System.Text.Json;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// The public keys of a JWK Set (RFC 7517 §5) that can check JWS signatures: RSA keys (<c>n</c>,
/// <c>e</c>; at least 2048 bits, as jose4j demands in Kafka) and EC keys on P-256, P-384, P-521
/// (<c>crv</c>, <c>x</c>, <c>y</c>). Keys whose <c>use</c> is not <c>sig</c>, of another
/// <c>kty</c>, or malformed are skipped and named in <see cref="Skipped"/>, so one odd key does not
/// take the set down.
/// </summary>
internal sealed class JsonWebKeySet
{
    private JsonWebKeySet(IReadOnlyList<JsonWebKey> keys, IReadOnlyList<string> skipped)
    {
        Keys = keys;
        Skipped = skipped;
    }

    /// <summary>The usable keys.</summary>
    public IReadOnlyList<JsonWebKey> Keys { get; }

    /// <summary>Why keys were skipped, for the log.</summary>
    public IReadOnlyList<string> Skipped { get; }

    /// <summary>Parses a JWK Set document; throws <see cref="FormatException"/> when it is not one.</summary>
    public static JsonWebKeySet Parse(ReadOnlySpan<byte> json)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(json.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new FormatException("the JWKS is not JSON: " + e.Message, e);
        }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object
                || !doc.RootElement.TryGetProperty("keys", out var keys) || keys.ValueKind != JsonValueKind.Array)
            {
                throw new FormatException("the JWKS is not an object with a \"keys\" array");
            }

            var usable = new List<JsonWebKey>();
            var skipped = new List<string>();
            var index = 0;
            foreach (var k in keys.EnumerateArray())
            {
                if (JsonWebKey.TryCreate(k, out var key, out var why))
                {
                    usable.Add(key);
                }
                else
                {
                    skipped.Add($"key {index} ({(k.ValueKind == JsonValueKind.Object ? Jwt.StringMember(k, "kid") : null) ?? "no kid"}): {why}");
                }

                index++;
            }

            return new JsonWebKeySet(usable, skipped);
        }
    }

    /// <summary>
    /// The keys that may have signed a token with <paramref name="alg"/> and <paramref name="kid"/>:
    /// with a kid, the keys of that kid and those with no kid (jose4j's selector in Kafka admits
    /// them too); without one, every key of the algorithm's type.
    /// </summary>
    public IEnumerable<JsonWebKey> Candidates(string alg, string? kid) =>
        Keys.Where(k => k.Fits(alg) && (kid is null || k.KeyId is null || k.KeyId == kid));
}

/// <summary>One public key of a JWK Set.</summary>
internal sealed class JsonWebKey
{
    private readonly RSAParameters _rsa;
    private readonly ECParameters _ec;

    private JsonWebKey(string? kid, string kty, string? alg, RSAParameters rsa, ECParameters ec, string? crv)
    {
        KeyId = kid;
        KeyType = kty;
        Algorithm = alg;
        _rsa = rsa;
        _ec = ec;
        Curve = crv;
    }

    /// <summary>The key's <c>kid</c>, or null.</summary>
    public string? KeyId { get; }

    /// <summary><c>RSA</c> or <c>EC</c>.</summary>
    public string KeyType { get; }

    /// <summary>The key's <c>alg</c> when it names one; the token's alg must then be that.</summary>
    public string? Algorithm { get; }

    /// <summary>The EC curve (<c>P-256</c>, ...), or null for RSA.</summary>
    public string? Curve { get; }

    /// <summary>Reads one JWK; <paramref name="why"/> says why it can't be used.</summary>
    public static bool TryCreate(JsonElement k, out JsonWebKey key, out string why)
    {
        key = null!;
        if (k.ValueKind != JsonValueKind.Object)
        {
            why = "not a JSON object";
            return false;
        }

        var kid = Jwt.StringMember(k, "kid");
        var kty = Jwt.StringMember(k, "kty");
        var alg = Jwt.StringMember(k, "alg");
        var use = Jwt.StringMember(k, "use");
        if (use is not null && use != "sig")
        {
            why = $"use is \"{use}\", not \"sig\"";
            return false;
        }

        if (alg is not null && !JwsAlgorithms.IsSupported(alg))
        {
            why = $"alg \"{alg}\" is not one of RS256/384/512, PS256/384/512, ES256/384/512";
            return false;
        }

        switch (kty)
        {
            case "RSA":
                if (!Jwt.TryDecode(Jwt.StringMember(k, "n") ?? "", out var n) || !Jwt.TryDecode(Jwt.StringMember(k, "e") ?? "", out var e)
                    || n.Length == 0 || e.Length == 0)
                {
                    why = "an RSA key needs base64url n and e";
                    return false;
                }

                n = n.AsSpan().TrimStart((byte)0).ToArray();
                if (n.Length * 8 < 2048)
                {
                    why = $"the RSA key has {n.Length * 8} bits, fewer than 2048";
                    return false;
                }

                if (alg is not null && !alg.StartsWith("RS", StringComparison.Ordinal) && !alg.StartsWith("PS", StringComparison.Ordinal))
                {
                    why = $"alg \"{alg}\" does not fit an RSA key";
                    return false;
                }

                key = new JsonWebKey(kid, kty, alg, new RSAParameters { Modulus = n, Exponent = e }, default, null);
                why = "";
                return true;

            case "EC":
                var crv = Jwt.StringMember(k, "crv");
                var (curve, size) = crv switch
                {
                    "P-256" => (ECCurve.NamedCurves.nistP256, 32),
                    "P-384" => (ECCurve.NamedCurves.nistP384, 48),
                    "P-521" => (ECCurve.NamedCurves.nistP521, 66),
                    _ => (default(ECCurve), 0),
                };
                if (size == 0)
                {
                    why = $"crv \"{crv}\" is not P-256, P-384 or P-521";
                    return false;
                }

                if (!Jwt.TryDecode(Jwt.StringMember(k, "x") ?? "", out var x) || !Jwt.TryDecode(Jwt.StringMember(k, "y") ?? "", out var y)
                    || x.Length != size || y.Length != size)
                {
                    why = $"an EC key on {crv} needs base64url x and y of {size} bytes";
                    return false;
                }

                if (alg is not null && JwsAlgorithms.CurveOf(alg) != crv)
                {
                    why = $"alg \"{alg}\" does not fit an EC key on {crv}";
                    return false;
                }

                var ec = new ECParameters { Curve = curve, Q = new ECPoint { X = x, Y = y } };
                try
                {
                    // Checks the point is on the curve once, at load time.
                    using var probe = ECDsa.Create(ec);
                }
                catch (CryptographicException ex)
                {
                    why = "the EC point is not valid: " + ex.Message;
                    return false;
                }

                key = new JsonWebKey(kid, kty, alg, default, ec, crv);
                why = "";
                return true;

            default:
                why = $"kty \"{kty}\" is not RSA or EC";
                return false;
        }
    }

    /// <summary>Whether a token signed with <paramref name="alg"/> can be checked with this key.</summary>
    public bool Fits(string alg) =>
        (Algorithm is null || Algorithm == alg)
        && (KeyType == "RSA" ? alg.StartsWith("RS", StringComparison.Ordinal) || alg.StartsWith("PS", StringComparison.Ordinal) : JwsAlgorithms.CurveOf(alg) == Curve);

    /// <summary>Checks <paramref name="signature"/> over <paramref name="data"/> with <paramref name="alg"/>.</summary>
    public bool Verify(string alg, byte[] data, byte[] signature)
    {
        var hash = JwsAlgorithms.HashOf(alg);
        try
        {
            if (KeyType == "RSA")
            {
                // A fresh object per check: RSA and ECDsa instances are not documented as safe for
                // concurrent use, and an authentication is rare enough for the import to cost nothing.
                using var rsa = RSA.Create(_rsa);
                var padding = alg.StartsWith("PS", StringComparison.Ordinal) ? RSASignaturePadding.Pss : RSASignaturePadding.Pkcs1;
                return rsa.VerifyData(data, signature, hash, padding);
            }

            using var ecdsa = ECDsa.Create(_ec);

            // JWS carries r || s of the curve's size each (RFC 7518 §3.4), .NET's IEEE P1363 format.
            return signature.Length == 2 * _ec.Q.X!.Length
                && ecdsa.VerifyData(data, signature, hash, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        }
        catch (CryptographicException)
        {
            return false;
        }
    }
}

/// <summary>The JWS algorithms Moldau checks (RFC 7518 §3): RS*, PS* and ES* with SHA-2.</summary>
internal static class JwsAlgorithms
{
    public static bool IsSupported(string alg) => alg is "RS256" or "RS384" or "RS512" or "PS256" or "PS384" or "PS512" or "ES256" or "ES384" or "ES512";

    public static HashAlgorithmName HashOf(string alg) => alg[2..] switch
    {
        "256" => HashAlgorithmName.SHA256,
        "384" => HashAlgorithmName.SHA384,
        _ => HashAlgorithmName.SHA512,
    };

    public static string? CurveOf(string alg) => alg switch
    {
        "ES256" => "P-256",
        "ES384" => "P-384",
        "ES512" => "P-521",
        _ => null,
    };
}
