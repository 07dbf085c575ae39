using System.Buffers.Text;
using System.Diagnostics.CodeAnalysis;
using System.Text;
using System.Text.Json;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// A JWS in compact serialization (RFC 7515 §7.1), split and decoded but not yet trusted:
/// <c>BASE64URL(header) '.' BASE64URL(claims) '.' BASE64URL(signature)</c>. The header and the
/// claims must be JSON objects without duplicate member names (a second <c>sub</c> or <c>exp</c>
/// must not slip past a check of the first).
/// </summary>
internal sealed class Jwt
{
    private static readonly JsonDocumentOptions JsonOptions = new() { AllowDuplicateProperties = false, MaxDepth = 16 };

    private Jwt(JsonElement header, JsonElement claims, byte[] signingInput, byte[] signature)
    {
        Header = header;
        Claims = claims;
        SigningInput = signingInput;
        Signature = signature;
    }

    /// <summary>The JOSE header (a JSON object).</summary>
    public JsonElement Header { get; }

    /// <summary>The claims set (a JSON object).</summary>
    public JsonElement Claims { get; }

    /// <summary>The ASCII bytes the signature covers: the first two parts with their dot.</summary>
    public byte[] SigningInput { get; }

    /// <summary>The decoded signature (empty for an unsecured JWS).</summary>
    public byte[] Signature { get; }

    /// <summary>The header's <c>alg</c>, or null.</summary>
    public string? Algorithm => StringMember(Header, "alg");

    /// <summary>The header's <c>kid</c>, or null.</summary>
    public string? KeyId => StringMember(Header, "kid");

    /// <summary>Splits and decodes <paramref name="token"/>; <paramref name="error"/> says why not.</summary>
    public static bool TryParse(string token, [NotNullWhen(true)] out Jwt? jwt, [NotNullWhen(false)] out string? error)
    {
        jwt = null;
        var parts = token.Split('.');
        if (parts.Length != 3)
        {
            error = $"the token has {parts.Length} dot-separated parts, a JWS in compact serialization has 3";
            return false;
        }

        if (!TryDecodeObject(parts[0], out var header))
        {
            error = "the JOSE header is not base64url-encoded JSON object";
            return false;
        }

        if (!TryDecodeObject(parts[1], out var claims))
        {
            error = "the claims are not a base64url-encoded JSON object";
            return false;
        }

        if (!TryDecode(parts[2], out var signature))
        {
            error = "the signature is not base64url";
            return false;
        }

        jwt = new Jwt(header, claims, Encoding.ASCII.GetBytes(token[..(parts[0].Length + 1 + parts[1].Length)]), signature);
        error = null;
        return true;
    }

    /// <summary>A string member of <paramref name="obj"/>, or null when absent or not a string.</summary>
    public static string? StringMember(JsonElement obj, string name) =>
        obj.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    /// <summary>
    /// A NumericDate claim (seconds since the epoch, possibly fractional, as librdkafka writes
    /// <c>iat</c> and <c>exp</c>): absent -> <see cref="ClaimState.Absent"/>; not a number -> <see cref="ClaimState.WrongType"/>.
    /// </summary>
    public ClaimState TryGetNumericDate(string name, out DateTimeOffset value)
    {
        value = default;
        if (!Claims.TryGetProperty(name, out var v))
        {
            return ClaimState.Absent;
        }

        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out var seconds) || double.IsNaN(seconds)
            || seconds < -62_135_596_800 || seconds > 253_402_300_799)
        {
            return ClaimState.WrongType;
        }

        value = DateTimeOffset.FromUnixTimeMilliseconds((long)Math.Round(seconds * 1000));
        return ClaimState.Present;
    }

    /// <summary>A claim that is a string or an array of strings, as a list (absent -> empty).</summary>
    public IReadOnlyList<string> StringOrList(string name, bool splitOnSpaces)
    {
        if (!Claims.TryGetProperty(name, out var v))
        {
            return [];
        }

        var result = new List<string>();
        if (v.ValueKind == JsonValueKind.String)
        {
            var s = v.GetString()!;
            if (splitOnSpaces)
            {
                result.AddRange(s.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
            }
            else if (!string.IsNullOrWhiteSpace(s))
            {
                result.Add(s.Trim());
            }
        }
        else if (v.ValueKind == JsonValueKind.Array)
        {
            foreach (var e in v.EnumerateArray())
            {
                var s = e.ValueKind == JsonValueKind.String ? e.GetString()! : e.GetRawText();
                if (!string.IsNullOrWhiteSpace(s) && !result.Contains(s.Trim()))
                {
                    result.Add(s.Trim());
                }
            }
        }

        return result;
    }

    /// <summary>Decodes base64url with or without padding.</summary>
    public static bool TryDecode(string text, [NotNullWhen(true)] out byte[]? bytes)
    {
        bytes = null;
        var trimmed = text.TrimEnd('=');
        if (!Base64Url.IsValid(trimmed))
        {
            return false;
        }

        bytes = Base64Url.DecodeFromChars(trimmed);
        return true;
    }

    private static bool TryDecodeObject(string part, out JsonElement obj)
    {
        obj = default;
        if (part.Length == 0 || !TryDecode(part, out var bytes))
        {
            return false;
        }

        try
        {
            using var doc = JsonDocument.Parse(bytes, JsonOptions);
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
            {
                return false;
            }

            obj = doc.RootElement.Clone();
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }
}

/// <summary>Whether a claim is there and of the expected type.</summary>
internal enum ClaimState
{
    Absent,
    WrongType,
    Present,
}

/// <summary>A token that passed validation: who it names, until when, with which scope.</summary>
/// <param name="PrincipalName">The principal claim's value (Kafka's principal name, without <c>User:</c>).</param>
/// <param name="Expiry">The token's <c>exp</c>.</param>
/// <param name="IssuedAt">The token's <c>iat</c>, when it has one.</param>
/// <param name="Scope">The scope claim's values.</param>
public sealed record OAuthBearerToken(string PrincipalName, DateTimeOffset Expiry, DateTimeOffset? IssuedAt, IReadOnlyList<string> Scope);

/// <summary>
/// A validator's answer: a token, or an RFC 7628 error status (<c>invalid_token</c>,
/// <c>insufficient_scope</c>) with the scope that was missing and a reason for the broker's log.
/// </summary>
internal readonly record struct TokenCheck(OAuthBearerToken? Token, string? ErrorStatus = null, string? ErrorScope = null, string? Reason = null)
{
    public static TokenCheck Invalid(string reason) => new(null, "invalid_token", null, reason);
}

/// <summary>Validates the bearer token of one client first message.</summary>
internal interface ITokenValidator
{
    TokenCheck Validate(string token);
}
