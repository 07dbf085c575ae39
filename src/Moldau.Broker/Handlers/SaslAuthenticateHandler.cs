using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Security.Sasl;

namespace Moldau.Broker.Handlers;

/// <summary>
/// SaslAuthenticate v0-2: one token of the exchange SaslHandshake began, handed to the mechanism.
/// Success makes the connection authenticated as the mechanism's principal and, with
/// connections.max.reauth.ms (or a credential that expires), says in session_lifetime_ms (v1+)
/// when it must re-authenticate (KIP-368). Failure answers SASL_AUTHENTICATION_FAILED with a
/// message that says nothing of which part was wrong (the reason goes to the broker's log, one
/// line), after connection.failed.authentication.delay.ms, and closes the connection, as Kafka.
/// A token with no exchange under way is ILLEGAL_SASL_STATE: before any handshake the connection
/// closes; on an authenticated connection it is answered and the connection stays, as Kafka.
/// After a SaslHandshake v0 the same exchange runs over raw tokens (<see cref="HandleRawTokenAsync"/>).
/// </summary>
internal sealed class SaslAuthenticateHandler(BrokerState state) : IApiHandler<SaslAuthenticateRequest, SaslReply<SaslAuthenticateResponse>>
{
    /// <inheritdoc/>
    public ValueTask<SaslReply<SaslAuthenticateResponse>> HandleAsync(RequestContext context, SaslAuthenticateRequest request, CancellationToken cancellationToken)
    {
        var session = context.Session;
        var sasl = session.Sasl;
        if (sasl?.Exchange is not { } exchange)
        {
            var authenticated = session.Authentication != AuthenticationState.Pending;
            var reason = authenticated ? "SaslAuthenticate request received after successful authentication" : "SaslAuthenticate before SaslHandshake";
            var refusal = new SaslAuthenticateResponse { ErrorCode = (short)ErrorCode.IllegalSaslState, ErrorMessage = reason };
            return ValueTask.FromResult(new SaslReply<SaslAuthenticateResponse>(refusal, authenticated ? null : reason + " (ILLEGAL_SASL_STATE)"));
        }

        SaslStep step;
        try
        {
            step = exchange.Step(request.AuthBytes);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            step = SaslStep.Fail($"{exchange.Mechanism}: {e.GetType().Name}: {e.Message}");
        }

        switch (step.Outcome)
        {
            case SaslOutcome.Continue:
                return ValueTask.FromResult(new SaslReply<SaslAuthenticateResponse>(new SaslAuthenticateResponse { AuthBytes = step.Challenge }));

            case SaslOutcome.Succeeded when step.Principal is { } principal:
                sasl.Exchange = null;
                if (sasl.AuthenticatedMechanism is not null && principal != session.Principal)
                {
                    return FailAsync(context, $"re-authentication changes the principal from {session.Principal} to {principal}", step.ClientMessage, cancellationToken);
                }

                var listener = state.Sasl.For(session.ListenerName);
                var now = state.Time.GetUtcNow().ToUnixTimeMilliseconds();
                long? lifetime = listener.MaxReauthMs > 0 ? listener.MaxReauthMs : null;
                if (step.CredentialExpiry is { } expiry)
                {
                    var left = Math.Max(1, expiry.ToUnixTimeMilliseconds() - now);
                    lifetime = lifetime is { } l ? Math.Min(l, left) : left;
                }

                var reauthenticated = sasl.AuthenticatedMechanism is not null;
                sasl.AuthenticatedMechanism = exchange.Mechanism;
                sasl.AuthenticateVersion = context.Version;
                sasl.ExpiresAtMs = lifetime is { } ms ? now + ms : long.MaxValue;
                session.Principal = principal;
                session.Authentication = AuthenticationState.Authenticated;
                state.Metrics?.Authenticated(session.ListenerName, succeeded: true);
                state.Log.LogDebug(
                    "connection {Id} from {Peer} ({Listener}) {What} as {Principal} with {Mechanism}{Lifetime}",
                    session.Id,
                    session.Remote,
                    session.ListenerName,
                    reauthenticated ? "re-authenticated" : "authenticated",
                    principal,
                    exchange.Mechanism,
                    lifetime is { } life ? $", session lifetime {life} ms" : string.Empty);
                return ValueTask.FromResult(new SaslReply<SaslAuthenticateResponse>(new SaslAuthenticateResponse
                {
                    AuthBytes = step.Challenge,
                    SessionLifetimeMs = lifetime ?? 0,
                }));

            default:
                sasl.Exchange = null;
                return FailAsync(context, step.LogReason ?? $"{exchange.Mechanism}: failed", step.ClientMessage, cancellationToken);
        }
    }

    /// <summary>
    /// One frame after a SaslHandshake v0, which Kafka reads as a bare SASL token (KIP-43, before
    /// KIP-152 framed them in SaslAuthenticate): no request header, and the answer is the
    /// mechanism's challenge as a bare size-prefixed frame (four zero bytes when there is none, as
    /// after PLAIN). A failed login has no way to say so in this framing: the connection is
    /// closed after connection.failed.authentication.delay.ms, with the reason in the broker's log
    /// line, as Kafka's SaslServerAuthenticator does. kafka-python 2.0.2 logs in this way only.
    /// </summary>
    /// <param name="session">The connection, with an exchange under way after a v0 handshake.</param>
    /// <param name="token">The frame: the client's token, whole.</param>
    /// <param name="cancellationToken">Cancelled when the connection goes away.</param>
    public async ValueTask<DispatchResult> HandleRawTokenAsync(ConnectionSession session, ReadOnlyMemory<byte> token, CancellationToken cancellationToken)
    {
        // Version 0 of SaslAuthenticate is what the exchange is to the rest of the broker: a
        // session that can't re-authenticate (KIP-368), closed when its lifetime ends.
        var header = new RequestHeader { ApiKey = (short)ApiKey.SaslAuthenticate, ApiVersion = 0 };
        var context = new RequestContext(header, session, cancellationToken) { RequestBytes = token.Length };
        var reply = await HandleAsync(context, new SaslAuthenticateRequest { AuthBytes = token.ToArray() }, cancellationToken).ConfigureAwait(false);
        if (reply.CloseAfterReason is { } reason)
        {
            return DispatchResult.CloseConnection(reason);
        }

        var challenge = reply.Response.AuthBytes ?? [];
        var frame = new byte[4 + challenge.Length];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(frame, challenge.Length);
        challenge.CopyTo(frame.AsSpan(4));
        return DispatchResult.Send(frame, frame.Length);
    }

    /// <inheritdoc/>
    public SaslReply<SaslAuthenticateResponse> ErrorResponse(RequestContext context, SaslAuthenticateRequest request, ErrorCode error) =>
        new(new SaslAuthenticateResponse { ErrorCode = (short)error });

    private async ValueTask<SaslReply<SaslAuthenticateResponse>> FailAsync(RequestContext context, string logReason, string? clientMessage, CancellationToken cancellationToken)
    {
        var session = context.Session;
        state.Metrics?.Authenticated(session.ListenerName, succeeded: false);
        // The failure is answered only after connection.failed.authentication.delay.ms, so a
        // client guessing passwords waits; other connections are not held up (an await, not a sleep).
        var delay = state.Sasl.For(session.ListenerName).FailedAuthenticationDelayMs;
        if (delay > 0)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(delay), state.Time, cancellationToken).ConfigureAwait(false);
        }

        var response = new SaslAuthenticateResponse
        {
            ErrorCode = (short)ErrorCode.SaslAuthenticationFailed,
            ErrorMessage = clientMessage ?? SaslStep.Fail(string.Empty).ClientMessage,
        };
        // The real reason goes to the broker's one line for this connection's close, never to the client.
        return new SaslReply<SaslAuthenticateResponse>(response, $"SASL authentication failed on listener {session.ListenerName}: {logReason}");
    }
}
