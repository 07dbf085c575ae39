using System.Security.Cryptography;
using System.Text;

namespace Moldau.Security.Sasl;

/// <summary>
/// A SCRAM mechanism (RFC 5802, RFC 7677): its name, its hash, and the type code Kafka gives it in
/// DescribeUserScramCredentials, AlterUserScramCredentials and UserScramCredentialRecord.
/// </summary>
public sealed class ScramMechanism
{
    /// <summary>The fewest iterations a credential may have, as Kafka's ScramMechanism.</summary>
    public const int MinIterations = 4096;

    /// <summary>The most iterations AlterUserScramCredentials accepts, as Kafka (KIP-554).</summary>
    public const int MaxIterations = 16384;

    /// <summary>SCRAM-SHA-256, type 1.</summary>
    public static readonly ScramMechanism Sha256 = new("SCRAM-SHA-256", 1, HashAlgorithmName.SHA256, 32);

    /// <summary>SCRAM-SHA-512, type 2.</summary>
    public static readonly ScramMechanism Sha512 = new("SCRAM-SHA-512", 2, HashAlgorithmName.SHA512, 64);

    private ScramMechanism(string name, sbyte type, HashAlgorithmName hash, int hashBytes)
    {
        Name = name;
        Type = type;
        Hash = hash;
        HashBytes = hashBytes;
    }

    /// <summary>Both mechanisms.</summary>
    public static IReadOnlyList<ScramMechanism> All { get; } = [Sha256, Sha512];

    /// <summary>The mechanism's name, as SaslHandshake says it.</summary>
    public string Name { get; }

    /// <summary>Kafka's type code (0 is UNKNOWN).</summary>
    public sbyte Type { get; }

    /// <summary>The hash function.</summary>
    public HashAlgorithmName Hash { get; }

    /// <summary>The hash's output length in bytes.</summary>
    public int HashBytes { get; }

    /// <summary>The mechanism named <paramref name="name"/> (case as SASL names it), or null.</summary>
    public static ScramMechanism? FromName(string? name) => All.FirstOrDefault(m => m.Name == name);

    /// <summary>The mechanism with Kafka's type code <paramref name="type"/>, or null.</summary>
    public static ScramMechanism? FromType(sbyte type) => All.FirstOrDefault(m => m.Type == type);

    /// <summary>Hi(password, salt, i) of RFC 5802: PBKDF2 with HMAC over this hash.</summary>
    public byte[] SaltedPassword(string password, ReadOnlySpan<byte> salt, int iterations) =>
        Rfc2898DeriveBytes.Pbkdf2(Encoding.UTF8.GetBytes(Normalize(password)), salt, iterations, Hash, HashBytes);

    /// <summary>The credential stored for a password: the salted password is not kept, only StoredKey and ServerKey.</summary>
    public ScramCredential Credential(string password, byte[] salt, int iterations) => FromSaltedPassword(SaltedPassword(password, salt, iterations), salt, iterations);

    /// <summary>The credential made from a salted password (what AlterUserScramCredentials carries).</summary>
    public ScramCredential FromSaltedPassword(ReadOnlySpan<byte> saltedPassword, byte[] salt, int iterations)
    {
        var clientKey = Hmac(saltedPassword, "Client Key"u8);
        return new ScramCredential(this, salt, HashOf(clientKey), Hmac(saltedPassword, "Server Key"u8), iterations);
    }

    /// <summary>HMAC(key, data) with this hash.</summary>
    public byte[] Hmac(ReadOnlySpan<byte> key, ReadOnlySpan<byte> data) =>
        Hash == HashAlgorithmName.SHA256 ? HMACSHA256.HashData(key, data) : HMACSHA512.HashData(key, data);

    /// <summary>H(data) with this hash.</summary>
    public byte[] HashOf(ReadOnlySpan<byte> data) =>
        Hash == HashAlgorithmName.SHA256 ? SHA256.HashData(data) : SHA512.HashData(data);

    /// <summary>A fresh random salt, as long as the hash's output (Kafka's length).</summary>
    public byte[] NewSalt() => RandomNumberGenerator.GetBytes(HashBytes);

    /// <inheritdoc/>
    public override string ToString() => Name;

    // RFC 5802 asks for SASLprep; Kafka's formatter uses the UTF-8 bytes as given (no SASLprep),
    // and so do the clients: normalizing here would lock out users whose clients don't. NFC-only
    // inputs are the common case and pass through unchanged.
    private static string Normalize(string password) => password;
}

/// <summary>
/// What the broker keeps for one user and mechanism (RFC 5802 §3): the salt, StoredKey = H(ClientKey),
/// ServerKey, and the iteration count. The password and the salted password are never kept.
/// </summary>
/// <param name="Mechanism">SCRAM-SHA-256 or SCRAM-SHA-512.</param>
/// <param name="Salt">The salt.</param>
/// <param name="StoredKey">H(HMAC(SaltedPassword, "Client Key")).</param>
/// <param name="ServerKey">HMAC(SaltedPassword, "Server Key").</param>
/// <param name="Iterations">The PBKDF2 iteration count.</param>
public sealed record ScramCredential(ScramMechanism Mechanism, byte[] Salt, byte[] StoredKey, byte[] ServerKey, int Iterations);
