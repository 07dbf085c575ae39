using System.Net;
using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>Where a connection stands with authentication.</summary>
public enum AuthenticationState
{
    /// <summary>The listener asks for none (PLAINTEXT, SSL without client auth): every API is open.</summary>
    NotRequired,

    /// <summary>The listener requires SASL and the client has not finished it: only the handshake APIs are open.</summary>
    Pending,

    /// <summary>The client authenticated; <see cref="ConnectionSession.Principal"/> says as whom.</summary>
    Authenticated,
}

/// <summary>
/// One client connection as the broker sees it, for as long as it is open: fixed facts (id, peer,
/// listener) and what the connection learns as it goes (principal, authentication state, the
/// client's id and software). The network layer makes one per connection; handlers see it through
/// <see cref="RequestContext.Session"/>. Requests of a connection may run on more than one thread:
/// its mutable parts are single references, written whole.
/// </summary>
public sealed class ConnectionSession
{
    /// <summary>The principal of a connection nobody authenticated, as Kafka names it.</summary>
    public const string AnonymousPrincipal = "User:ANONYMOUS";

    /// <summary>A session for a new connection.</summary>
    /// <param name="id">A number unique per connection in this process.</param>
    /// <param name="remote">The peer's address.</param>
    /// <param name="listenerName">The listener's name, e.g. PLAINTEXT.</param>
    /// <param name="securityProtocol">The listener's security protocol (PLAINTEXT until TLS and SASL come).</param>
    /// <param name="requiresAuthentication">Whether the listener requires SASL before other APIs.</param>
    public ConnectionSession(long id, EndPoint? remote, string listenerName, string securityProtocol = "PLAINTEXT", bool requiresAuthentication = false)
    {
        Id = id;
        Remote = remote;
        ListenerName = listenerName;
        SecurityProtocol = securityProtocol;
        Authentication = requiresAuthentication ? AuthenticationState.Pending : AuthenticationState.NotRequired;
    }

    /// <summary>A number unique per connection in this process.</summary>
    public long Id { get; }

    /// <summary>The peer's address.</summary>
    public EndPoint? Remote { get; }

    /// <summary>The listener's name, e.g. PLAINTEXT.</summary>
    public string ListenerName { get; }

    /// <summary>The listener's security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.</summary>
    public string SecurityProtocol { get; }

    /// <summary>The peer's IP as ACLs name hosts (an IPv4-mapped IPv6 address as IPv4), or empty when unknown.</summary>
    public string PeerHost => _peerHost ??= Remote is IPEndPoint ip
        ? (ip.Address.IsIPv4MappedToIPv6 ? ip.Address.MapToIPv4() : ip.Address).ToString()
        : string.Empty;

    private string? _peerHost;

    /// <summary>Who the client is, as the authorizer sees it.</summary>
    public string Principal { get; set; } = AnonymousPrincipal;

    /// <summary>Where the connection stands with authentication.</summary>
    public AuthenticationState Authentication { get; set; }

    /// <summary>The client id of the latest request header (null until one came, or when the client sends none).</summary>
    public string? ClientId { get; internal set; }

    /// <summary>client_software_name from ApiVersions v3+ (KIP-511), or null.</summary>
    public string? ClientSoftwareName { get; internal set; }

    /// <summary>client_software_version from ApiVersions v3+ (KIP-511), or null.</summary>
    public string? ClientSoftwareVersion { get; internal set; }

    private long _mutedUntil;

    /// <summary>Milliseconds left of a quota throttle: the connection reads no request until then (KIP-219).</summary>
    public int ThrottleRemainingMs => (int)Math.Clamp(Volatile.Read(ref _mutedUntil) - Environment.TickCount64, 0, int.MaxValue);

    /// <summary>
    /// Whether a quota ever throttled this connection: from then on it reads one request at a time,
    /// as Kafka serves every connection, so a throttle applies before the next request is read.
    /// </summary>
    public bool Throttled { get; private set; }

    /// <summary>Mutes the connection for <paramref name="ms"/> from now (a later end already set is kept).</summary>
    internal void Throttle(int ms)
    {
        Throttled = true;
        var until = Environment.TickCount64 + ms;
        long seen;
        do
        {
            seen = Volatile.Read(ref _mutedUntil);
            if (seen >= until)
            {
                return;
            }
        }
        while (Interlocked.CompareExchange(ref _mutedUntil, until, seen) != seen);
    }

    /// <summary>The SASL exchange of this connection: mechanism, exchange under way, when the session expires (null: none began).</summary>
    internal SaslState? Sasl { get; set; }

    /// <summary>The order in which this connection's produce requests append, per partition.</summary>
    internal ProduceSequencer Writes { get; } = new();

    /// <summary>
    /// Whether a request of <paramref name="api"/> may run now: before a required authentication
    /// only ApiVersions and the SASL APIs may, as in Kafka.
    /// </summary>
    public bool MayUse(ApiKey api) =>
        Authentication != AuthenticationState.Pending || api is ApiKey.ApiVersions or ApiKey.SaslHandshake or ApiKey.SaslAuthenticate;

    /// <summary>
    /// Completes once every produce request of this connection dispatched so far has appended
    /// (acks=all may still wait for the fsync). A request without an ordering key is dispatched
    /// only after it, so it sees what the produce requests before it wrote.
    /// </summary>
    public ValueTask WhenWritesDoneAsync() => Writes.WhenIdleAsync();
}
