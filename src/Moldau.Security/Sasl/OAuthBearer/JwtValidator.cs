using System.Text.Json;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// Signed JWTs checked against a JWK Set, as Kafka's OAuthBearerValidatorCallbackHandler (KIP-768)
/// does: the header's <c>alg</c> must be RS/PS/ES 256/384/512 (never <c>none</c>); the key is the
/// set's key of the header's <c>kid</c> (an unknown kid asks the source for fresh keys); the
/// signature must verify; <c>exp</c> and <c>iat</c> must be numbers; now must be before
/// <c>exp</c> plus the clock skew and, when there is an <c>nbf</c>, not before <c>nbf</c> minus the
/// skew; <c>iss</c> must equal <c>sasl.oauthbearer.expected.issuer</c> and <c>aud</c> hold one of
/// <c>sasl.oauthbearer.expected.audience</c> when they are set; the sub claim
/// (<c>sasl.oauthbearer.sub.claim.name</c>) must be a non-blank string. Every failure answers
/// <c>invalid_token</c>, as Kafka does.
/// </summary>
internal sealed class JwtValidator(JwtValidatorOptions options, JwksSource keys, TimeProvider time, TimeSpan firstLoadWait) : ITokenValidator
{
    public TokenCheck Validate(string token)
    {
        if (!Jwt.TryParse(token, out var jwt, out var error))
        {
            return TokenCheck.Invalid(error);
        }

        var alg = jwt.Algorithm;
        if (alg is null)
        {
            return TokenCheck.Invalid("the JOSE header has no alg");
        }

        if (alg == "none")
        {
            return TokenCheck.Invalid("alg \"none\" (an unsecured JWT) is refused: a JWKS is configured, tokens must be signed");
        }

        if (!JwsAlgorithms.IsSupported(alg))
        {
            return TokenCheck.Invalid($"alg \"{alg}\" is not one of RS256/384/512, PS256/384/512, ES256/384/512");
        }

        if (jwt.Header.TryGetProperty("crit", out _))
        {
            return TokenCheck.Invalid("the JOSE header has crit extensions, none of which are understood");
        }

        var set = keys.GetKeys(firstLoadWait);
        if (set is null)
        {
            return TokenCheck.Invalid($"no JWKS has been loaded yet from {keys.Location}");
        }

        var kid = jwt.KeyId;
        var candidates = set.Candidates(alg, kid).ToList();
        if (candidates.Count == 0 && kid is not null && keys.RequestRefresh())
        {
            set = keys.GetKeys(firstLoadWait)!;
            candidates = set.Candidates(alg, kid).ToList();
        }

        if (candidates.Count == 0)
        {
            return TokenCheck.Invalid(kid is null
                ? $"the token has no kid and the JWKS has no key for {alg}"
                : $"the JWKS has no key with kid \"{kid}\" for {alg} (a refresh was asked for)");
        }

        if (!candidates.Any(k => k.Verify(alg, jwt.SigningInput, jwt.Signature)))
        {
            return TokenCheck.Invalid($"the {alg} signature does not verify with the key {kid ?? "(no kid)"}");
        }

        var now = time.GetUtcNow();
        var skew = options.ClockSkew;
        switch (jwt.TryGetNumericDate("exp", out var exp))
        {
            case ClaimState.Absent:
                return TokenCheck.Invalid("required claim missing: exp");
            case ClaimState.WrongType:
                return TokenCheck.Invalid("the exp claim is not a number");
        }

        switch (jwt.TryGetNumericDate("iat", out var iat))
        {
            case ClaimState.Absent:
                return TokenCheck.Invalid("required claim missing: iat");
            case ClaimState.WrongType:
                return TokenCheck.Invalid("the iat claim is not a number");
        }

        if (now >= exp + skew)
        {
            return TokenCheck.Invalid($"the token expired at {exp:O} (now {now:O}, clock skew {skew.TotalSeconds} s)");
        }

        switch (jwt.TryGetNumericDate("nbf", out var nbf))
        {
            case ClaimState.WrongType:
                return TokenCheck.Invalid("the nbf claim is not a number");
            case ClaimState.Present when now + skew < nbf:
                return TokenCheck.Invalid($"the token is not valid before {nbf:O} (now {now:O}, clock skew {skew.TotalSeconds} s)");
        }

        if (options.ExpectedIssuer is { } issuer)
        {
            var iss = Jwt.StringMember(jwt.Claims, "iss");
            if (iss != issuer)
            {
                return TokenCheck.Invalid(iss is null ? $"the token has no iss, expected \"{issuer}\"" : $"the issuer \"{iss}\" is not the expected \"{issuer}\"");
            }
        }

        if (options.ExpectedAudience.Count > 0)
        {
            var aud = jwt.Claims.TryGetProperty("aud", out var a) && a.ValueKind is JsonValueKind.String or JsonValueKind.Array
                ? jwt.StringOrList("aud", splitOnSpaces: false)
                : [];
            if (!aud.Any(options.ExpectedAudience.Contains))
            {
                return TokenCheck.Invalid($"the audience ({string.Join(", ", aud)}) holds none of the expected ({string.Join(", ", options.ExpectedAudience)})");
            }
        }

        var sub = Jwt.StringMember(jwt.Claims, options.SubClaimName);
        if (string.IsNullOrWhiteSpace(sub))
        {
            return TokenCheck.Invalid($"no principal name (a non-blank string) in claim '{options.SubClaimName}'");
        }

        return new TokenCheck(new OAuthBearerToken(sub.Trim(), exp, iat, jwt.StringOrList(options.ScopeClaimName, splitOnSpaces: true)));
    }
}

/// <summary>The claim checks of <see cref="JwtValidator"/>, from the broker's sasl.oauthbearer.* keys.</summary>
internal sealed record JwtValidatorOptions(TimeSpan ClockSkew, string? ExpectedIssuer, IReadOnlyList<string> ExpectedAudience, string ScopeClaimName, string SubClaimName);
