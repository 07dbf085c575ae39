using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Configuration;
using Moldau.Broker.Topics;
using Moldau.Security.Sasl;
using Moldau.Security.Sasl.OAuthBearer;

namespace Moldau.Broker.Security;

/// <summary>The SASL mechanisms one listener serves: enabled names in order, and a factory for each.</summary>
/// <param name="Enabled">sasl.enabled.mechanisms, as SaslHandshake lists them.</param>
/// <param name="Factories">The factory of each enabled mechanism Moldau can serve.</param>
/// <param name="MaxReauthMs">connections.max.reauth.ms (0: sessions never expire).</param>
/// <param name="FailedAuthenticationDelayMs">connection.failed.authentication.delay.ms.</param>
internal sealed record ListenerSasl(IReadOnlyList<string> Enabled, IReadOnlyDictionary<string, ISaslServerFactory> Factories, long MaxReauthMs, int FailedAuthenticationDelayMs);

/// <summary>
/// Which SASL mechanisms each listener serves, made once per listener from server.properties as
/// Kafka reads them: <c>listener.name.&lt;l&gt;.sasl.enabled.mechanisms</c> else
/// <c>sasl.enabled.mechanisms</c> (Moldau's default: SCRAM-SHA-256,SCRAM-SHA-512; Kafka's is
/// GSSAPI, which Moldau does not have); PLAIN's users from the PlainLoginModule of
/// <c>listener.name.&lt;l&gt;.plain.sasl.jaas.config</c>, else <c>listener.name.&lt;l&gt;.sasl.jaas.config</c>,
/// else <c>sasl.jaas.config</c>; SCRAM's credentials from the metadata image at each exchange.
/// Mechanisms with broker state of their own (OAUTHBEARER) come in as factories per listener.
/// </summary>
public sealed class SaslMechanismRegistry
{
    /// <summary>The mechanisms enabled when sasl.enabled.mechanisms is not set.</summary>
    public const string DefaultMechanisms = "SCRAM-SHA-256,SCRAM-SHA-512";

    /// <summary>The mechanisms Moldau knows.</summary>
    public static readonly IReadOnlySet<string> Known = new HashSet<string>(StringComparer.Ordinal) { "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER" };

    private readonly IReadOnlyDictionary<string, string> _properties;
    private readonly ScramCredentialLookup _scram;
    private readonly Func<ListenerProperties, IEnumerable<ISaslServerFactory>> _extra;
    private readonly ILogger _log;
    private readonly ConcurrentDictionary<string, ListenerSasl> _listeners = new(StringComparer.OrdinalIgnoreCase);

    /// <summary>A registry over server.properties and the SCRAM credentials of <paramref name="topics"/>' image.</summary>
    /// <param name="properties">server.properties.</param>
    /// <param name="scram">The SCRAM credentials, looked up at each exchange.</param>
    /// <param name="extra">Further factories per listener (OAUTHBEARER), used for the mechanisms they name when enabled.</param>
    /// <param name="log">Where configuration problems are logged.</param>
    internal SaslMechanismRegistry(IReadOnlyDictionary<string, string> properties, ScramCredentialLookup scram, Func<ListenerProperties, IEnumerable<ISaslServerFactory>>? extra, ILogger log)
    {
        _properties = properties;
        _scram = scram;
        _extra = extra ?? (_ => []);
        _log = log;
    }

    /// <summary>A registry whose SCRAM credentials come from the image of <paramref name="topics"/>.</summary>
    internal static SaslMechanismRegistry For(IReadOnlyDictionary<string, string> properties, TopicRegistry topics, ILogger log) =>
        new(
            properties,
            (mechanism, user) => topics.Image.ScramCredentials.Find(mechanism, user),
            l => EnabledOf(l).Contains(OAuthBearerMechanism) ? [OAuthBearer(l, log)] : [],
            log);

    private const string OAuthBearerMechanism = "OAUTHBEARER";

    // OAUTHBEARER's settings are listener.name.<l>.oauthbearer.<key>, then listener.name.<l>.<key>,
    // then <key>: unsecured JWTs by default, JWKS-validated ones with sasl.oauthbearer.jwks.endpoint.url.
    private static OAuthBearerServerFactory OAuthBearer(ListenerProperties listener, ILogger log) =>
        new(key => listener.GetForMechanism(OAuthBearerMechanism, key), options: new OAuthBearerFactoryOptions { Log = message => log.LogWarning("OAUTHBEARER: {Message}", message) });

    /// <summary>What <paramref name="listenerName"/> serves.</summary>
    internal ListenerSasl For(string listenerName) => _listeners.GetOrAdd(listenerName, Build);

    /// <summary>
    /// Why a SASL listener's configuration can't be served, or null: a mechanism Moldau does not
    /// know, or a PLAIN JAAS configuration that does not parse. Checked at start-up.
    /// </summary>
    public static string? Validate(IReadOnlyDictionary<string, string> properties, string listenerName)
    {
        var listener = new ListenerProperties(properties, listenerName);
        foreach (var mechanism in EnabledOf(listener))
        {
            if (!Known.Contains(mechanism))
            {
                return $"sasl.enabled.mechanisms: listener {listenerName} enables {mechanism}; Moldau serves {string.Join(", ", Known.Order(StringComparer.Ordinal))}";
            }

            if (mechanism == OAuthBearerMechanism)
            {
                try
                {
                    using var probe = new OAuthBearerServerFactory(key => listener.GetForMechanism(OAuthBearerMechanism, key), options: new OAuthBearerFactoryOptions { JwksFirstLoadWait = TimeSpan.Zero });
                }
                catch (OAuthBearerConfigException e)
                {
                    return $"listener {listenerName}, OAUTHBEARER: {e.Message}";
                }
            }

            if (mechanism == PlainSaslServerFactory.Name)
            {
                var jaas = listener.GetForMechanism(mechanism, "sasl.jaas.config");
                if (jaas is null)
                {
                    return $"listener.name.{listenerName.ToLowerInvariant()}.plain.sasl.jaas.config: PLAIN is enabled on listener {listenerName} but no JAAS configuration names its users";
                }

                try
                {
                    JaasConfig.Parse(jaas);
                }
                catch (FormatException e)
                {
                    return $"listener.name.{listenerName.ToLowerInvariant()}.plain.sasl.jaas.config: {e.Message}";
                }
            }
        }

        return ParseLong(listener.Get("connections.max.reauth.ms"), 0) is null ? "connections.max.reauth.ms: not a non-negative integer"
            : ParseLong(listener.Get("connection.failed.authentication.delay.ms"), 100) is null ? "connection.failed.authentication.delay.ms: not a non-negative integer"
            : null;
    }

    private static IReadOnlyList<string> EnabledOf(ListenerProperties listener) =>
        (listener.Get("sasl.enabled.mechanisms") ?? DefaultMechanisms)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(m => m.ToUpperInvariant())
            .Distinct(StringComparer.Ordinal)
            .ToList();

    private static long? ParseLong(string? text, long fallback) =>
        text is null ? fallback
        : long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v
        : null;

    private ListenerSasl Build(string listenerName)
    {
        var listener = new ListenerProperties(_properties, listenerName);
        var enabled = EnabledOf(listener);
        var factories = new Dictionary<string, ISaslServerFactory>(StringComparer.Ordinal);
        foreach (var factory in _extra(listener))
        {
            factories[factory.Mechanism] = factory;
        }

        foreach (var mechanism in enabled)
        {
            if (factories.ContainsKey(mechanism))
            {
                continue;
            }

            if (ScramMechanism.FromName(mechanism) is { } scram)
            {
                factories[mechanism] = new ScramSaslServerFactory(scram, _scram);
            }
            else if (mechanism == PlainSaslServerFactory.Name)
            {
                var users = new Dictionary<string, string>();
                try
                {
                    users = new Dictionary<string, string>(JaasConfig.PlainUsers(JaasConfig.Parse(listener.GetForMechanism(mechanism, "sasl.jaas.config") ?? string.Empty)));
                }
                catch (FormatException e)
                {
                    _log.LogError("listener {Listener}: PLAIN's sasl.jaas.config does not parse ({Reason}): PLAIN logins will fail", listenerName, e.Message);
                }

                factories[mechanism] = new PlainSaslServerFactory(users);
            }
            else
            {
                _log.LogWarning("listener {Listener}: SASL mechanism {Mechanism} is enabled but not served by this broker", listenerName, mechanism);
            }
        }

        var served = enabled.Where(factories.ContainsKey).ToList();
        return new ListenerSasl(
            served,
            served.ToDictionary(m => m, m => factories[m], StringComparer.Ordinal),
            ParseLong(listener.Get("connections.max.reauth.ms"), 0) ?? 0,
            (int)Math.Min(int.MaxValue, ParseLong(listener.Get("connection.failed.authentication.delay.ms"), 100) ?? 100));
    }
}
