using Moldau.Protocol;
using Moldau.Security.Sasl;

namespace Moldau.Broker;

/// <summary>
/// Where one connection stands in its SASL exchanges (Kafka's SaslServerAuthenticator and its
/// ReauthInfo): the mechanism the latest SaslHandshake chose, the exchange under way, and once
/// authenticated, as whom, by which mechanism and until when (KIP-368). Requests of a connection
/// are handled in order and change this before their first await, so plain fields do.
/// </summary>
internal sealed class SaslState(TimeProvider time)
{
    /// <summary>The version of the latest SaslHandshake (0: the exchange's tokens come as bare frames, without SaslAuthenticate).</summary>
    public short HandshakeVersion { get; set; }

    /// <summary>The exchange under way (between SaslHandshake and its last SaslAuthenticate), or null.</summary>
    public ISaslServer? Exchange { get; set; }

    /// <summary>The mechanism the connection authenticated with, or null before it did.</summary>
    public string? AuthenticatedMechanism { get; set; }

    /// <summary>The SaslAuthenticate version of the successful exchange: 1+ lets the client re-authenticate (KIP-368).</summary>
    public short AuthenticateVersion { get; set; }

    /// <summary>When the session ends, in Unix milliseconds (long.MaxValue: never).</summary>
    public long ExpiresAtMs { get; set; } = long.MaxValue;

    /// <summary>Whether an exchange under way re-authenticates an authenticated connection.</summary>
    public bool Reauthenticating => Exchange is not null && AuthenticatedMechanism is not null;

    /// <summary>
    /// Why a request of <paramref name="api"/> closes the connection because its session expired, or
    /// null when it may go on: past the lifetime, only a re-authentication (SaslHandshake, then the
    /// SaslAuthenticates of its exchange) is served, as Kafka does.
    /// </summary>
    public string? Expired(ApiKey api)
    {
        if (ExpiresAtMs == long.MaxValue || time.GetUtcNow().ToUnixTimeMilliseconds() < ExpiresAtMs)
        {
            return null;
        }

        if (api == ApiKey.SaslHandshake || (api == ApiKey.SaslAuthenticate && Reauthenticating))
        {
            return null;
        }

        return $"{api} after the SASL session expired without re-authentication (connections.max.reauth.ms)";
    }
}
