using System.Globalization;

namespace Moldau.Security.Sasl;

/// <summary>
/// A SCRAM credential as <c>kafka-storage format --add-scram</c> writes it:
/// <code>
/// SCRAM-SHA-256=[name=alice,password=alice-secret]
/// SCRAM-SHA-512=[name="alice",password="alice-secret",iterations=8192]
/// SCRAM-SHA-256=[name=alice,salt="c2FsdA==",saltedpassword="...base64...",iterations=4096]
/// </code>
/// Values may be double-quoted (then they may hold ',' and ']'); salt and saltedpassword are
/// base64. Iterations default to 4096 and must lie in 4096..16384, as AlterUserScramCredentials.
/// </summary>
/// <param name="Mechanism">SCRAM-SHA-256 or SCRAM-SHA-512.</param>
/// <param name="User">The user name.</param>
/// <param name="Password">The password, or null when a salted password is given.</param>
/// <param name="Salt">The salt, or null for a random one.</param>
/// <param name="SaltedPassword">The salted password, instead of a password.</param>
/// <param name="Iterations">The iteration count.</param>
public sealed record ScramCredentialSpec(ScramMechanism Mechanism, string User, string? Password, byte[]? Salt, byte[]? SaltedPassword, int Iterations)
{
    /// <summary>Parses one <c>--add-scram</c> value; throws <see cref="FormatException"/> saying what is wrong.</summary>
    public static ScramCredentialSpec Parse(string text)
    {
        var eq = text.IndexOf('=');
        if (eq <= 0 || text.Length < eq + 3 || text[eq + 1] != '[' || text[^1] != ']')
        {
            throw new FormatException($"'{text}' is not MECHANISM=[name=...,password=...]");
        }

        var mechanism = ScramMechanism.FromName(text[..eq].Trim()) ?? throw new FormatException($"unknown SCRAM mechanism '{text[..eq]}' (SCRAM-SHA-256 or SCRAM-SHA-512)");
        var fields = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        var body = text[(eq + 2)..^1];
        var i = 0;
        while (i < body.Length)
        {
            var keyEnd = body.IndexOf('=', i);
            if (keyEnd < 0)
            {
                throw new FormatException($"'{body[i..]}' is not key=value");
            }

            var key = body[i..keyEnd].Trim();
            i = keyEnd + 1;
            string value;
            if (i < body.Length && body[i] == '"')
            {
                var close = body.IndexOf('"', i + 1);
                if (close < 0)
                {
                    throw new FormatException($"unterminated quote in the value of {key}");
                }

                value = body[(i + 1)..close];
                i = close + 1;
                if (i < body.Length && body[i] != ',')
                {
                    throw new FormatException($"expected ',' after the value of {key}");
                }
            }
            else
            {
                var comma = body.IndexOf(',', i);
                var end = comma < 0 ? body.Length : comma;
                value = body[i..end].Trim();
                i = end;
            }

            i++; // past the ','
            if (!fields.TryAdd(key, value))
            {
                throw new FormatException($"{key} given twice");
            }
        }

        foreach (var key in fields.Keys)
        {
            if (key.ToLowerInvariant() is not ("name" or "password" or "salt" or "saltedpassword" or "iterations"))
            {
                throw new FormatException($"unknown field '{key}' (name, password, salt, saltedpassword, iterations)");
            }
        }

        if (!fields.TryGetValue("name", out var user) || user.Length == 0)
        {
            throw new FormatException("name is missing");
        }

        var iterations = ScramMechanism.MinIterations;
        if (fields.TryGetValue("iterations", out var it) &&
            (!int.TryParse(it, NumberStyles.None, CultureInfo.InvariantCulture, out iterations) || iterations < ScramMechanism.MinIterations || iterations > ScramMechanism.MaxIterations))
        {
            throw new FormatException($"iterations '{it}' is not an integer between {ScramMechanism.MinIterations} and {ScramMechanism.MaxIterations}");
        }

        var password = fields.GetValueOrDefault("password");
        var salt = fields.TryGetValue("salt", out var s) ? Base64("salt", s) : null;
        var salted = fields.TryGetValue("saltedpassword", out var sp) ? Base64("saltedpassword", sp) : null;
        if ((password is null) == (salted is null))
        {
            throw new FormatException("give either password or saltedpassword (with salt)");
        }

        if (salted is not null && (salt is null || salted.Length != mechanism.HashBytes))
        {
            throw new FormatException($"saltedpassword needs a salt and must be {mechanism.HashBytes} bytes for {mechanism}");
        }

        return new ScramCredentialSpec(mechanism, user, password, salt, salted, iterations);
    }

    /// <summary>The credential to store (a random salt when none was given).</summary>
    public ScramCredential ToCredential()
    {
        var salt = Salt ?? Mechanism.NewSalt();
        return SaltedPassword is { } salted ? Mechanism.FromSaltedPassword(salted, salt, Iterations) : Mechanism.Credential(Password!, salt, Iterations);
    }

    /// <summary>Whether <paramref name="existing"/> already stores this credential (same iterations, and the password gives its keys).</summary>
    public bool IsStoredBy(ScramCredential? existing)
    {
        if (existing is null || existing.Iterations != Iterations || (Salt is not null && !Salt.AsSpan().SequenceEqual(existing.Salt)))
        {
            return false;
        }

        var candidate = SaltedPassword is { } salted ? Mechanism.FromSaltedPassword(salted, existing.Salt, Iterations) : Mechanism.Credential(Password!, existing.Salt, Iterations);
        return candidate.StoredKey.AsSpan().SequenceEqual(existing.StoredKey) && candidate.ServerKey.AsSpan().SequenceEqual(existing.ServerKey);
    }

    private static byte[] Base64(string key, string value)
    {
        try
        {
            return Convert.FromBase64String(value);
        }
        catch (FormatException)
        {
            throw new FormatException($"{key} is not base64");
        }
    }
}
