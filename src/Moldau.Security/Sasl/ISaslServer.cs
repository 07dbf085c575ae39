namespace Moldau.Security.Sasl;

/// <summary>What one step of a SASL exchange came to.</summary>
public enum SaslOutcome
{
    /// <summary>The exchange goes on: send <see cref="SaslStep.Challenge"/> and wait for the next client token.</summary>
    Continue,

    /// <summary>The client is authenticated as <see cref="SaslStep.Principal"/>.</summary>
    Succeeded,

    /// <summary>Authentication failed; the connection answers SASL_AUTHENTICATION_FAILED and closes.</summary>
    Failed,
}

/// <summary>
/// One step's result. <paramref name="Challenge"/> goes back to the client in SaslAuthenticate's
/// auth_bytes (also on success, e.g. SCRAM's server-final message). <paramref name="Principal"/> is
/// the Kafka principal (<c>User:alice</c>) on success. <paramref name="ClientMessage"/> is for the
/// client on failure and must not say which part was wrong; <paramref name="LogReason"/> is for
/// the broker's log only. <paramref name="CredentialExpiry"/> bounds the session's lifetime for
/// re-authentication (KIP-368), e.g. a token's exp.
/// </summary>
public readonly record struct SaslStep(
    SaslOutcome Outcome,
    byte[] Challenge,
    string? Principal = null,
    string? ClientMessage = null,
    string? LogReason = null,
    DateTimeOffset? CredentialExpiry = null)
{
    /// <summary>A failure with Kafka's generic message and a reason for the log.</summary>
    public static SaslStep Fail(string logReason, byte[]? challenge = null) =>
        new(SaslOutcome.Failed, challenge ?? [], ClientMessage: "Authentication failed: Invalid credentials", LogReason: logReason);
}

/// <summary>The server side of one SASL exchange on one connection (one instance per exchange).</summary>
public interface ISaslServer
{
    /// <summary>The mechanism, as SaslHandshake names it (PLAIN, SCRAM-SHA-256, OAUTHBEARER, ...).</summary>
    string Mechanism { get; }

    /// <summary>Takes the client's next token and answers it.</summary>
    SaslStep Step(ReadOnlySpan<byte> clientToken);
}

/// <summary>Makes a fresh <see cref="ISaslServer"/> for each exchange of one mechanism on one listener.</summary>
public interface ISaslServerFactory
{
    /// <summary>The mechanism's name.</summary>
    string Mechanism { get; }

    /// <summary>A server for a new exchange.</summary>
    ISaslServer Create();
}
