using System.Security.Cryptography;
using System.Text;

namespace Moldau.Security.Sasl;

/// <summary>Makes <see cref="PlainSaslServer"/>s over a fixed set of users (from the listener's JAAS configuration).</summary>
/// <param name="users">User name to password.</param>
public sealed class PlainSaslServerFactory(IReadOnlyDictionary<string, string> users) : ISaslServerFactory
{
    /// <summary>The mechanism's name.</summary>
    public const string Name = "PLAIN";

    // Passwords are compared as SHA-256 digests, so the comparison takes the same time whatever
    // their lengths.
    private readonly Dictionary<string, byte[]> _digests = users.ToDictionary(u => u.Key, u => SHA256.HashData(Encoding.UTF8.GetBytes(u.Value)), StringComparer.Ordinal);

    /// <inheritdoc/>
    public string Mechanism => Name;

    /// <inheritdoc/>
    public ISaslServer Create() => new PlainSaslServer(_digests);
}

/// <summary>
/// The server side of one PLAIN exchange (RFC 4616, as Kafka's PlainSaslServer): one message,
/// <c>[authzid] NUL authcid NUL password</c>, UTF-8. An authzid, when given, must equal the user.
/// </summary>
public sealed class PlainSaslServer : ISaslServer
{
    // Stands in for an unknown user's password, so the comparison is made all the same.
    private static readonly byte[] Nobody = RandomNumberGenerator.GetBytes(32);

    private readonly IReadOnlyDictionary<string, byte[]> _digests;
    private bool _done;

    internal PlainSaslServer(IReadOnlyDictionary<string, byte[]> digests) => _digests = digests;

    /// <inheritdoc/>
    public string Mechanism => PlainSaslServerFactory.Name;

    /// <inheritdoc/>
    public SaslStep Step(ReadOnlySpan<byte> clientToken)
    {
        if (_done)
        {
            return SaslStep.Fail("PLAIN: message after the exchange ended");
        }

        _done = true;
        var first = clientToken.IndexOf((byte)0);
        var second = first < 0 ? -1 : clientToken[(first + 1)..].IndexOf((byte)0);
        if (first < 0 || second < 0)
        {
            return SaslStep.Fail("PLAIN: message is not authzid NUL user NUL password");
        }

        second += first + 1;
        string authzid, user;
        try
        {
            var utf8 = new UTF8Encoding(false, true);
            authzid = utf8.GetString(clientToken[..first]);
            user = utf8.GetString(clientToken[(first + 1)..second]);
            _ = utf8.GetString(clientToken[(second + 1)..]);
        }
        catch (DecoderFallbackException)
        {
            return SaslStep.Fail("PLAIN: message is not UTF-8");
        }

        if (user.Length == 0)
        {
            return SaslStep.Fail("PLAIN: empty user name");
        }

        if (authzid.Length > 0 && authzid != user)
        {
            return SaslStep.Fail($"PLAIN: authorization id {ScramSaslServer.Printable(authzid)} differs from user {ScramSaslServer.Printable(user)}");
        }

        var known = _digests.TryGetValue(user, out var expected);
        var matches = CryptographicOperations.FixedTimeEquals(SHA256.HashData(clientToken[(second + 1)..]), expected ?? Nobody);
        if (!known)
        {
            return SaslStep.Fail($"PLAIN: unknown user {ScramSaslServer.Printable(user)}");
        }

        return matches
            ? new SaslStep(SaslOutcome.Succeeded, [], Principal: "User:" + user)
            : SaslStep.Fail($"PLAIN: wrong password for user {ScramSaslServer.Printable(user)}");
    }
}
