using System.Text;
using System.Text.Json;

namespace Moldau.Security.Sasl.OAuthBearer;

/// <summary>
/// The server side of one OAUTHBEARER exchange (RFC 7628), as Kafka's OAuthBearerSaslServer runs it:
/// <code>
/// client                                   server
///   n,,\x01auth=Bearer &lt;jwt&gt;\x01...\x01  -&gt;   valid:   empty challenge, Succeeded (User:&lt;sub&gt;, exp)
///                                          &lt;-   invalid: {"status":"invalid_token"} as a challenge, Continue
///   \x01                               -&gt;   Failed, the JSON error as the client's message
/// </code>
/// A malformed first message fails at once with the generic message (Kafka's SaslException). An
/// authzid in the gs2 header must equal the token's principal name.
/// </summary>
public sealed class OAuthBearerServer : ISaslServer
{
    private readonly ITokenValidator _validator;
    private State _state;
    private string? _error;
    private string? _errorReason;

    internal OAuthBearerServer(ITokenValidator validator) => _validator = validator;

    private enum State
    {
        AwaitingFirstMessage,
        ErrorSent,
        Done,
    }

    /// <inheritdoc />
    public string Mechanism => OAuthBearerServerFactory.MechanismName;

    /// <summary>The validated token, once the exchange succeeded.</summary>
    public OAuthBearerToken? Token { get; private set; }

    /// <summary>The client's SASL extensions (KIP-342), once the first message was read; all are accepted, as Kafka's validators accept them.</summary>
    public IReadOnlyDictionary<string, string> Extensions { get; private set; } = new Dictionary<string, string>();

    /// <inheritdoc />
    public SaslStep Step(ReadOnlySpan<byte> clientToken)
    {
        switch (_state)
        {
            case State.ErrorSent:
                _state = State.Done;
                return clientToken is [0x01]
                    ? new SaslStep(SaslOutcome.Failed, [], ClientMessage: _error, LogReason: _errorReason)
                    : SaslStep.Fail($"OAUTHBEARER: expected the client's 0x01 after the error {_error}, got {clientToken.Length} other bytes (first failure: {_errorReason})");
            case State.Done:
                return SaslStep.Fail("OAUTHBEARER: a message after the exchange ended");
        }

        if (!OAuthBearerClientFirstMessage.TryParse(clientToken, out var message, out var parseError))
        {
            _state = State.Done;
            return SaslStep.Fail("OAUTHBEARER: invalid client first message: " + parseError);
        }

        Extensions = message.Extensions;
        var check = _validator.Validate(message.Token);
        if (check.Token is not { } token)
        {
            // RFC 7628 §3.2.2: the error goes to the client as a challenge; it answers 0x01 and
            // the exchange then fails.
            _state = State.ErrorSent;
            _error = ErrorJson(check.ErrorStatus ?? "invalid_token", check.ErrorScope);
            _errorReason = "OAUTHBEARER: " + check.Reason;
            return new SaslStep(SaslOutcome.Continue, Encoding.UTF8.GetBytes(_error), LogReason: _errorReason);
        }

        _state = State.Done;
        if (message.AuthorizationId is { Length: > 0 } authzid && authzid != token.PrincipalName)
        {
            // Kafka's message (a SaslAuthenticationException): it names only what the client sent.
            return new SaslStep(SaslOutcome.Failed, [],
                ClientMessage: $"Authentication failed: Client requested an authorization id ({authzid}) that is different from the token's principal name ({token.PrincipalName})",
                LogReason: $"OAUTHBEARER: authzid '{authzid}' is not the token's principal '{token.PrincipalName}'");
        }

        Token = token;
        return new SaslStep(SaslOutcome.Succeeded, [], Principal: "User:" + token.PrincipalName, CredentialExpiry: token.Expiry);
    }

    /// <summary>Kafka's shape of the RFC 7628 §3.2.2 error: <c>{"status":"invalid_token"}</c>, with <c>, "scope":"..."</c> for insufficient_scope.</summary>
    internal static string ErrorJson(string status, string? scope)
    {
        var json = "{\"status\":" + JsonSerializer.Serialize(status);
        if (scope is not null)
        {
            json += ", \"scope\":" + JsonSerializer.Serialize(scope);
        }

        return json + "}";
    }
}
