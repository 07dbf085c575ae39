namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// Unsecured JWTs (<c>alg</c> "none", empty signature) for development, as Kafka's default
/// OAuthBearerUnsecuredValidatorCallbackHandler checks them: the principal claim (JAAS option
/// <c>unsecuredValidatorPrincipalClaimName</c>, default <c>sub</c>) must be a non-blank string;
/// <c>exp</c> must be a number and now minus the allowed skew
/// (<c>unsecuredValidatorAllowableClockSkewMs</c>, default 0) before it; <c>iat</c>, when present,
/// not after now plus the skew, and before <c>exp</c>; every value of
/// <c>unsecuredValidatorRequiredScope</c> (space-separated) must be in the scope claim
/// (<c>unsecuredValidatorScopeClaimName</c>, default <c>scope</c>: a string, taken whole, or a list),
/// else the status is <c>insufficient_scope</c>. Anyone can mint such a token: never for production.
/// </summary>
internal sealed class UnsecuredTokenValidator(UnsecuredValidatorOptions options, TimeProvider time) : ITokenValidator
{
    public TokenCheck Validate(string token)
    {
        if (token.Contains("..", StringComparison.Ordinal))
        {
            return TokenCheck.Invalid("malformed compact serialization contains '..'");
        }

        if (!Jwt.TryParse(token, out var jwt, out var error))
        {
            return TokenCheck.Invalid(error);
        }

        if (jwt.Algorithm != "none")
        {
            return TokenCheck.Invalid($"an unsecured JWS must have alg \"none\", this one has \"{jwt.Algorithm}\" (no JWKS is configured to check signatures)");
        }

        if (jwt.Signature.Length != 0)
        {
            return TokenCheck.Invalid("an unsecured JWS must not contain a signature");
        }

        var principal = Jwt.StringMember(jwt.Claims, options.PrincipalClaimName);
        if (string.IsNullOrWhiteSpace(principal))
        {
            return TokenCheck.Invalid($"no principal name (a non-blank string) in claim '{options.PrincipalClaimName}'");
        }

        var now = time.GetUtcNow();
        var skew = options.AllowableClockSkew;
        switch (jwt.TryGetNumericDate("exp", out var exp))
        {
            case ClaimState.Absent:
                return TokenCheck.Invalid("required claim missing: exp");
            case ClaimState.WrongType:
                return TokenCheck.Invalid("the exp claim is not a number");
        }

        DateTimeOffset? issuedAt = null;
        switch (jwt.TryGetNumericDate("iat", out var iat))
        {
            case ClaimState.WrongType:
                return TokenCheck.Invalid("the iat claim is not a number");
            case ClaimState.Present:
                if (iat > now + skew)
                {
                    return TokenCheck.Invalid($"the Issued At value ({iat:O}) is after now ({now:O}) plus the allowable clock skew ({skew.TotalMilliseconds} ms)");
                }

                issuedAt = iat;
                break;
        }

        if (now - skew >= exp)
        {
            return TokenCheck.Invalid($"the token expired: now ({now:O}) minus the allowable clock skew ({skew.TotalMilliseconds} ms) is on or after exp ({exp:O})");
        }

        if (issuedAt is { } i && exp <= i)
        {
            return TokenCheck.Invalid($"exp ({exp:O}) is not after iat ({i:O})");
        }

        var scope = jwt.StringOrList(options.ScopeClaimName, splitOnSpaces: false);
        foreach (var required in options.RequiredScope)
        {
            if (!scope.Contains(required))
            {
                return new TokenCheck(null, "insufficient_scope", string.Join(' ', options.RequiredScope),
                    $"the token's scope ({string.Join(' ', scope)}) lacks the required scope '{required}' (all required: {string.Join(' ', options.RequiredScope)})");
            }
        }

        return new TokenCheck(new OAuthBearerToken(principal, exp, issuedAt, scope));
    }
}

/// <summary>The JAAS options of the unsecured validator (Kafka's names and defaults).</summary>
internal sealed record UnsecuredValidatorOptions(string PrincipalClaimName, string ScopeClaimName, IReadOnlyList<string> RequiredScope, TimeSpan AllowableClockSkew)
{
    public static UnsecuredValidatorOptions From(JaasOptions jaas)
    {
        static string NonBlank(string? v, string fallback) => string.IsNullOrWhiteSpace(v) ? fallback : v.Trim();

        var skewText = jaas.Get("unsecuredValidatorAllowableClockSkewMs");
        var skewMs = 0;
        if (!string.IsNullOrWhiteSpace(skewText) && (!int.TryParse(skewText.Trim(), out skewMs) || skewMs < 0))
        {
            throw new OAuthBearerConfigException($"sasl.jaas.config: unsecuredValidatorAllowableClockSkewMs must be a non-negative integer, not '{skewText}'");
        }

        return new UnsecuredValidatorOptions(
            NonBlank(jaas.Get("unsecuredValidatorPrincipalClaimName"), "sub"),
            NonBlank(jaas.Get("unsecuredValidatorScopeClaimName"), "scope"),
            (jaas.Get("unsecuredValidatorRequiredScope") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            TimeSpan.FromMilliseconds(skewMs));
    }
}
