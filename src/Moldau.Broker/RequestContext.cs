using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>What a handler knows about the request it serves, besides the body.</summary>
/// <remarks>A struct: one per request, passed down and never stored, so nothing to allocate.</remarks>
/// <param name="Header">The decoded request header (reused once the response is encoded: keep none of it).</param>
/// <param name="Session">The connection it came in on: listener, principal, authentication, client software.</param>
/// <param name="CancellationToken">Cancelled when the connection or the broker goes away.</param>
internal readonly record struct RequestContext(RequestHeader Header, ConnectionSession Session, CancellationToken CancellationToken)
{
    /// <summary>The request's API version.</summary>
    public short Version => Header.ApiVersion;

    /// <summary>The request frame's size in bytes (header and body), for quotas.</summary>
    public int RequestBytes { get; init; }

    /// <summary>The connection's session (the name handlers used before sessions were mutable).</summary>
    public ConnectionSession Connection => Session;
}
