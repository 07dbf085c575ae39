using System.Security.Cryptography;
using System.Text;

namespace Moldau.Security.Sasl;

/// <summary>Finds the SCRAM credential of <c>user</c> for <c>mechanism</c>, or null when there is none.</summary>
public delegate ScramCredential? ScramCredentialLookup(ScramMechanism mechanism, string user);

/// <summary>Makes <see cref="ScramSaslServer"/>s of one mechanism over the broker's credentials.</summary>
/// <param name="mechanism">SCRAM-SHA-256 or SCRAM-SHA-512.</param>
/// <param name="lookup">The credentials, read at each exchange (so a change applies to the next login).</param>
public sealed class ScramSaslServerFactory(ScramMechanism mechanism, ScramCredentialLookup lookup) : ISaslServerFactory
{
    // Unknown users get a credential made up from this key, so the exchange looks the same to the
    // client whether or not the user exists (RFC 5802 §5.1 suggests it) until the proof fails.
    private readonly byte[] _decoyKey = RandomNumberGenerator.GetBytes(32);

    /// <inheritdoc/>
    public string Mechanism => mechanism.Name;

    /// <inheritdoc/>
    public ISaslServer Create() => new ScramSaslServer(mechanism, lookup, _decoyKey);
}

/// <summary>
/// The server side of one SCRAM exchange (RFC 5802 §5, as Kafka's ScramSaslServer):
/// <code>
/// client-first:  gs2-header "n=" user ",r=" c-nonce [",ext=..."]      gs2-header: "n,," or "n,a=user,"
/// server-first:  "r=" c-nonce s-nonce ",s=" base64(salt) ",i=" iterations
/// client-final:  "c=" base64(gs2-header) ",r=" nonce ",p=" base64(ClientProof)
/// server-final:  "v=" base64(ServerSignature)
/// </code>
/// Channel binding is refused ("p=" and "y,"), as Kafka does; an authzid must equal the user; the
/// only extension Kafka knows, tokenauth (delegation tokens), is refused since Moldau has none.
/// Proofs are compared in constant time.
/// </summary>
public sealed class ScramSaslServer : ISaslServer
{
    private readonly ScramMechanism _mechanism;
    private readonly ScramCredentialLookup _lookup;
    private readonly byte[] _decoyKey;
    private State _state = State.ReceiveFirst;
    private string _user = string.Empty;
    private string _gs2Header = string.Empty;
    private string _clientFirstBare = string.Empty;
    private string _serverFirst = string.Empty;
    private string _nonce = string.Empty;
    private ScramCredential? _credential;
    private bool _known;

    private enum State
    {
        ReceiveFirst,
        ReceiveFinal,
        Done,
    }

    /// <summary>A server for one exchange; <paramref name="decoyKey"/> makes up credentials for unknown users.</summary>
    public ScramSaslServer(ScramMechanism mechanism, ScramCredentialLookup lookup, byte[] decoyKey)
    {
        _mechanism = mechanism;
        _lookup = lookup;
        _decoyKey = decoyKey;
    }

    /// <inheritdoc/>
    public string Mechanism => _mechanism.Name;

    /// <summary>A server nonce: 24 random bytes, base64 (printable, no comma).</summary>
    internal Func<string> ServerNonce { get; init; } = () => Convert.ToBase64String(RandomNumberGenerator.GetBytes(24));

    /// <inheritdoc/>
    public SaslStep Step(ReadOnlySpan<byte> clientToken)
    {
        string message;
        try
        {
            message = new UTF8Encoding(false, true).GetString(clientToken);
        }
        catch (DecoderFallbackException)
        {
            return Done(SaslStep.Fail($"{Mechanism}: message is not UTF-8"));
        }

        return _state switch
        {
            State.ReceiveFirst => First(message),
            State.ReceiveFinal => Final(message),
            _ => SaslStep.Fail($"{Mechanism}: message after the exchange ended"),
        };
    }

    private SaslStep First(string message)
    {
        // gs2-header: cbind-flag "," [authzid] ","
        if (message.StartsWith("p=", StringComparison.Ordinal) || message.StartsWith("y,", StringComparison.Ordinal))
        {
            return Done(SaslStep.Fail($"{Mechanism}: channel binding requested ('{message[..1]}'), not supported"));
        }

        if (!message.StartsWith("n,", StringComparison.Ordinal))
        {
            return Done(SaslStep.Fail($"{Mechanism}: client-first message has no gs2 header 'n,'"));
        }

        var second = message.IndexOf(',', 2);
        if (second < 0)
        {
            return Done(SaslStep.Fail($"{Mechanism}: client-first message has a malformed gs2 header"));
        }

        string? authzid = null;
        var authz = message[2..second];
        if (authz.Length > 0)
        {
            if (!authz.StartsWith("a=", StringComparison.Ordinal) || DecodeName(authz[2..]) is not { } a)
            {
                return Done(SaslStep.Fail($"{Mechanism}: malformed authzid"));
            }

            authzid = a;
        }

        _gs2Header = message[..(second + 1)];
        _clientFirstBare = message[(second + 1)..];
        var attributes = _clientFirstBare.Split(',');
        if (attributes.Length < 2 || !attributes[0].StartsWith("n=", StringComparison.Ordinal) || !attributes[1].StartsWith("r=", StringComparison.Ordinal))
        {
            return Done(SaslStep.Fail($"{Mechanism}: client-first message is not n=user,r=nonce"));
        }

        if (DecodeName(attributes[0][2..]) is not { Length: > 0 } user)
        {
            return Done(SaslStep.Fail($"{Mechanism}: malformed user name"));
        }

        var clientNonce = attributes[1][2..];
        if (clientNonce.Length == 0 || clientNonce.Any(c => c is < '!' or > '~' || c == ','))
        {
            return Done(SaslStep.Fail($"{Mechanism}: malformed client nonce"));
        }

        foreach (var extension in attributes.Skip(2))
        {
            var eq = extension.IndexOf('=');
            var key = eq < 0 ? extension : extension[..eq];
            if (key == "tokenauth")
            {
                return Done(SaslStep.Fail($"{Mechanism}: user {Printable(user)} asked for delegation-token authentication (tokenauth), which this broker does not have"));
            }

            if (key.Length == 0 || eq < 0)
            {
                return Done(SaslStep.Fail($"{Mechanism}: malformed extension '{Printable(extension)}'"));
            }

            // Other extensions are ignored, as Kafka ignores those it doesn't know.
        }

        if (authzid is not null && authzid != user)
        {
            return Done(SaslStep.Fail($"{Mechanism}: authorization id {Printable(authzid)} differs from user {Printable(user)}"));
        }

        _user = user;
        var credential = _lookup(_mechanism, user);
        _known = credential is not null && credential.Iterations >= ScramMechanism.MinIterations;
        _credential = _known ? credential : Decoy(user);
        _nonce = clientNonce + ServerNonce();
        _serverFirst = $"r={_nonce},s={Convert.ToBase64String(_credential!.Salt)},i={_credential.Iterations}";
        _state = State.ReceiveFinal;
        return new SaslStep(SaslOutcome.Continue, Encoding.UTF8.GetBytes(_serverFirst));
    }

    private SaslStep Final(string message)
    {
        _state = State.Done;
        var proofAt = message.LastIndexOf(",p=", StringComparison.Ordinal);
        if (proofAt < 0)
        {
            return SaslStep.Fail($"{Mechanism}: client-final message of user {Printable(_user)} has no proof");
        }

        var withoutProof = message[..proofAt];
        var attributes = withoutProof.Split(',');
        if (attributes.Length < 2 || !attributes[0].StartsWith("c=", StringComparison.Ordinal) || !attributes[1].StartsWith("r=", StringComparison.Ordinal))
        {
            return SaslStep.Fail($"{Mechanism}: client-final message of user {Printable(_user)} is not c=..,r=..,p=..");
        }

        if (attributes[0][2..] != Convert.ToBase64String(Encoding.UTF8.GetBytes(_gs2Header)))
        {
            return SaslStep.Fail($"{Mechanism}: channel binding of user {Printable(_user)} does not match the gs2 header");
        }

        // Ends with, as Kafka's ScramSaslServer checks: librdkafka (2.0.2) echoes its client nonce
        // followed by the whole server nonce. The proof covers the message as sent, so this is safe.
        if (!attributes[1][2..].EndsWith(_nonce, StringComparison.Ordinal))
        {
            return SaslStep.Fail($"{Mechanism}: nonce of user {Printable(_user)} does not match");
        }

        byte[] proof;
        try
        {
            proof = Convert.FromBase64String(message[(proofAt + 3)..]);
        }
        catch (FormatException)
        {
            return SaslStep.Fail($"{Mechanism}: proof of user {Printable(_user)} is not base64");
        }

        var credential = _credential!;
        var authMessage = Encoding.UTF8.GetBytes(_clientFirstBare + "," + _serverFirst + "," + withoutProof);
        var clientSignature = _mechanism.Hmac(credential.StoredKey, authMessage);
        if (proof.Length != clientSignature.Length)
        {
            return SaslStep.Fail($"{Mechanism}: proof of user {Printable(_user)} has the wrong length");
        }

        // ClientKey = ClientProof XOR ClientSignature; the proof holds when H(ClientKey) = StoredKey.
        for (var i = 0; i < proof.Length; i++)
        {
            proof[i] ^= clientSignature[i];
        }

        var matches = CryptographicOperations.FixedTimeEquals(_mechanism.HashOf(proof), credential.StoredKey);
        if (!_known)
        {
            return SaslStep.Fail($"{Mechanism}: unknown user {Printable(_user)}");
        }

        if (!matches)
        {
            return SaslStep.Fail($"{Mechanism}: wrong password for user {Printable(_user)}");
        }

        var serverSignature = _mechanism.Hmac(credential.ServerKey, authMessage);
        return new SaslStep(SaslOutcome.Succeeded, Encoding.UTF8.GetBytes("v=" + Convert.ToBase64String(serverSignature)), Principal: "User:" + _user);
    }

    private SaslStep Done(SaslStep step)
    {
        _state = State.Done;
        return step;
    }

    // The same made-up credential for the same unknown user on every attempt, so retries don't
    // tell it apart from a real one by a changing salt.
    private ScramCredential Decoy(string user)
    {
        var salt = HMACSHA256.HashData(_decoyKey, Encoding.UTF8.GetBytes(_mechanism.Name + "\0" + user))[..Math.Min(32, _mechanism.HashBytes)];
        var random = RandomNumberGenerator.GetBytes(_mechanism.HashBytes);
        return new ScramCredential(_mechanism, salt, _mechanism.HashOf(random), random, ScramMechanism.MinIterations);
    }

    // saslname: "=2C" is ',', "=3D" is '='; any other '=' is malformed (RFC 5802 §5.1).
    internal static string? DecodeName(string text)
    {
        if (!text.Contains('=', StringComparison.Ordinal))
        {
            return text;
        }

        var result = new StringBuilder(text.Length);
        for (var i = 0; i < text.Length; i++)
        {
            if (text[i] != '=')
            {
                result.Append(text[i]);
            }
            else if (string.CompareOrdinal(text, i, "=2C", 0, 3) == 0)
            {
                result.Append(',');
                i += 2;
            }
            else if (string.CompareOrdinal(text, i, "=3D", 0, 3) == 0)
            {
                result.Append('=');
                i += 2;
            }
            else
            {
                return null;
            }
        }

        return result.ToString();
    }

    /// <summary>A client-supplied string as it may appear in one log line.</summary>
    internal static string Printable(string text) =>
        "'" + string.Concat(text.Take(100).Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())) + (text.Length > 100 ? "...'" : "'");
}
