using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>What a handler knows about the request it serves, besides the body.</summary>
/// <remarks>A struct: one per request, passed down and never stored, so nothing to allocate.</remarks>
/// <param name="Header">The decoded request header.</param>
/// <param name="Connection">The connection it came in on.</param>
/// <param name="CancellationToken">Cancelled when the connection or the broker goes away.</param>
internal readonly record struct RequestContext(RequestHeader Header, ConnectionInfo Connection, CancellationToken CancellationToken)
{
    /// <summary>The request's API version.</summary>
    public short Version => Header.ApiVersion;
}
