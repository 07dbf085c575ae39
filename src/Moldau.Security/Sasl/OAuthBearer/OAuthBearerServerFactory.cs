using System.Globalization;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// Makes OAUTHBEARER exchanges for one listener. Reads these keys through the function it is given
/// (the caller resolves <c>listener.name.&lt;l&gt;.oauthbearer.&lt;key&gt;</c>, then
/// <c>listener.name.&lt;l&gt;.&lt;key&gt;</c>, then <c>&lt;key&gt;</c>, as
/// <c>ListenerProperties.GetForMechanism("OAUTHBEARER", key)</c> does):
/// <list type="bullet">
/// <item><c>sasl.oauthbearer.jwks.endpoint.url</c>: when set, tokens must be JWTs signed by a key of
/// this JWK Set (http/https URL, file: URL or absolute path); when not, unsecured JWTs are
/// accepted, as Kafka's default.</item>
/// <item><c>sasl.oauthbearer.jwks.endpoint.refresh.ms</c> (3600000),
/// <c>sasl.oauthbearer.jwks.endpoint.retry.backoff.ms</c> (100),
/// <c>sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms</c> (10000),
/// <c>sasl.oauthbearer.expected.issuer</c>, <c>sasl.oauthbearer.expected.audience</c> (a comma
/// list), <c>sasl.oauthbearer.clock.skew.seconds</c> (30), <c>sasl.oauthbearer.scope.claim.name</c>
/// (scope), <c>sasl.oauthbearer.sub.claim.name</c> (sub): for signed JWTs.</item>
/// <item><c>sasl.jaas.config</c>: the OAuthBearerLoginModule entry, whose options
/// <c>unsecuredValidatorPrincipalClaimName</c>, <c>unsecuredValidatorScopeClaimName</c>,
/// <c>unsecuredValidatorRequiredScope</c>, <c>unsecuredValidatorAllowableClockSkewMs</c> configure
/// unsecured JWTs. Optional here (Kafka demands the entry; its options all have defaults).</item>
/// </list>
/// A missing or malformed value throws <see cref="OAuthBearerConfigException"/> from the constructor,
/// so a bad configuration stops the broker at start.
/// </summary>
public sealed class OAuthBearerServerFactory : ISaslServerFactory, IDisposable
{
    /// <summary>The mechanism's name in SaslHandshake.</summary>
    public const string MechanismName = "OAUTHBEARER";

    private readonly ITokenValidator _validator;
    private readonly JwksSource? _jwks;

    /// <summary>Reads the listener's settings through <paramref name="config"/> (see the class summary).</summary>
    public OAuthBearerServerFactory(Func<string, string?> config, TimeProvider? time = null, OAuthBearerFactoryOptions? options = null)
    {
        time ??= TimeProvider.System;
        options ??= new OAuthBearerFactoryOptions();
        var log = options.Log ?? (_ => { });

        string? Get(string key) => config(key) is { } v && !string.IsNullOrWhiteSpace(v) ? v.Trim() : null;

        long Long(string key, long fallback, long min)
        {
            var text = Get(key);
            if (text is null)
            {
                return fallback;
            }

            return long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
                ? v
                : throw new OAuthBearerConfigException($"{key}: '{text}' is not an integer of at least {min}");
        }

        var jwksUrl = Get("sasl.oauthbearer.jwks.endpoint.url");
        if (jwksUrl is null)
        {
            var jaasText = Get("sasl.jaas.config");
            var jaas = jaasText is null ? JaasOptions.Empty : JaasOptions.Parse(jaasText);
            _validator = new UnsecuredTokenValidator(UnsecuredValidatorOptions.From(jaas), time);
            return;
        }

        var validatorOptions = new JwtValidatorOptions(
            TimeSpan.FromSeconds(Long("sasl.oauthbearer.clock.skew.seconds", 30, 0)),
            Get("sasl.oauthbearer.expected.issuer"),
            (Get("sasl.oauthbearer.expected.audience") ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Get("sasl.oauthbearer.scope.claim.name") ?? "scope",
            Get("sasl.oauthbearer.sub.claim.name") ?? "sub");
        _jwks = new JwksSource(
            jwksUrl,
            TimeSpan.FromMilliseconds(Long("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000, 1)),
            TimeSpan.FromMilliseconds(Long("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100, 1)),
            TimeSpan.FromMilliseconds(Long("sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", 10_000, 1)),
            time,
            options.JwksHttpHandler,
            log);
        _validator = new JwtValidator(validatorOptions, _jwks, time, options.JwksFirstLoadWait);
    }

    /// <inheritdoc />
    public string Mechanism => MechanismName;

    /// <summary>Whether tokens are checked against a JWK Set (else unsecured JWTs are accepted).</summary>
    public bool UsesJwks => _jwks is not null;

    /// <summary>Completes once the JWK Set was first loaded (at once for a file or with no JWKS); the broker may await it at start.</summary>
    public Task JwksLoaded => _jwks?.FirstLoad ?? Task.CompletedTask;

    internal JwksSource? Jwks => _jwks;

    /// <inheritdoc />
    public ISaslServer Create() => new OAuthBearerServer(_validator);

    /// <summary>Stops the JWKS refresh.</summary>
    public void Dispose() => _jwks?.Dispose();
}

/// <summary>What the factory needs beyond the listener's keys.</summary>
public sealed class OAuthBearerFactoryOptions
{
    /// <summary>Where JWKS refresh failures and skipped keys are reported (the broker's log); nowhere when null.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>The HTTP handler for an http(s) JWKS URL (TLS settings, proxies); a default one when null.</summary>
    public HttpMessageHandler? JwksHttpHandler { get; init; }

    /// <summary>How long an authentication waits for the first JWKS fetch after start before it fails.</summary>
    public TimeSpan JwksFirstLoadWait { get; init; } = TimeSpan.FromSeconds(10);
}
