using Microsoft.Extensions.Logging;
using Moldau.Broker.Security;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// SaslHandshake v0-1: the client names a mechanism; the broker answers with the listener's enabled
/// mechanisms and, when it is one of them, starts an exchange of it (SaslAuthenticate carries its
/// tokens). As Kafka: a mechanism not enabled is answered UNSUPPORTED_SASL_MECHANISM and the
/// connection closes; a handshake in the middle of an exchange is ILLEGAL_SASL_STATE and closes; on
/// an authenticated connection it begins a re-authentication (KIP-368) when the client
/// authenticated with SaslAuthenticate v1+, and is otherwise answered ILLEGAL_SASL_STATE (the
/// connection stays). After a v0 handshake the exchange's tokens come as bare size-prefixed
/// frames without a request header, as Kafka reads them (0.10 clients and kafka-python 2.0.2;
/// <see cref="SaslAuthenticateHandler.HandleRawTokenAsync"/>).
/// </summary>
internal sealed class SaslHandshakeHandler(BrokerState state) : IApiHandler<SaslHandshakeRequest, SaslReply<SaslHandshakeResponse>>
{
    /// <inheritdoc/>
    public ValueTask<SaslReply<SaslHandshakeResponse>> HandleAsync(RequestContext context, SaslHandshakeRequest request, CancellationToken cancellationToken) =>
        ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public SaslReply<SaslHandshakeResponse> ErrorResponse(RequestContext context, SaslHandshakeRequest request, ErrorCode error) =>
        new(new SaslHandshakeResponse { ErrorCode = (short)error });

    private SaslReply<SaslHandshakeResponse> Handle(RequestContext context, SaslHandshakeRequest request)
    {
        var session = context.Session;
        if (session.Authentication == AuthenticationState.NotRequired)
        {
            // Kafka's KafkaApis answers a handshake on a listener without SASL so.
            return new(new SaslHandshakeResponse { ErrorCode = (short)ErrorCode.IllegalSaslState });
        }

        var listener = state.Sasl.For(session.ListenerName);
        var sasl = session.Sasl ??= new SaslState(state.Time);
        if (sasl.Exchange is not null)
        {
            return Refuse(session, ErrorCode.IllegalSaslState, listener, $"SaslHandshake in the middle of a {sasl.Exchange.Mechanism} exchange");
        }

        if (session.Authentication == AuthenticationState.Authenticated && sasl.AuthenticateVersion < 1)
        {
            // The client can't re-authenticate (SaslAuthenticate v0): as Kafka, answered, not closed.
            return new(new SaslHandshakeResponse { ErrorCode = (short)ErrorCode.IllegalSaslState, Mechanisms = [.. listener.Enabled] });
        }

        if (!listener.Factories.TryGetValue(request.Mechanism, out var factory))
        {
            return Refuse(session, ErrorCode.UnsupportedSaslMechanism, listener, $"SaslHandshake asks for mechanism {Printable(request.Mechanism)}, not one of [{string.Join(", ", listener.Enabled)}]");
        }

        if (sasl.AuthenticatedMechanism is { } before && before != request.Mechanism)
        {
            return Refuse(session, ErrorCode.IllegalSaslState, listener, $"re-authentication changes the mechanism from {before} to {request.Mechanism}");
        }

        sasl.HandshakeVersion = context.Version;
        sasl.Exchange = factory.Create();
        return new(new SaslHandshakeResponse { ErrorCode = (short)ErrorCode.None, Mechanisms = [.. listener.Enabled] });
    }

    private static SaslReply<SaslHandshakeResponse> Refuse(ConnectionSession session, ErrorCode error, ListenerSasl listener, string reason)
    {
        return new(new SaslHandshakeResponse { ErrorCode = (short)error, Mechanisms = [.. listener.Enabled] }, $"SASL handshake refused on listener {session.ListenerName}: {reason} ({error})");
    }

    private static string Printable(string text) => Moldau.Security.Sasl.ScramSaslServer.Printable(text);
}
