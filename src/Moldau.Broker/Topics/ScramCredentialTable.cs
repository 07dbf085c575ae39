using System.Collections.Immutable;
using Moldau.Protocol.Metadata;
using Moldau.Security.Sasl;

namespace Moldau.Broker.Topics;

/// <summary>
/// The SCRAM credentials the metadata log holds (UserScramCredentialRecord, removed by
/// RemoveUserScramCredentialRecord), by user and mechanism: salt, StoredKey, ServerKey and
/// iterations, never a password. Immutable, part of <see cref="MetadataImage"/>.
/// </summary>
internal sealed class ScramCredentialTable
{
    /// <summary>No credentials.</summary>
    public static readonly ScramCredentialTable Empty = new(ImmutableSortedDictionary.Create<string, ImmutableDictionary<sbyte, ScramCredential>>(StringComparer.Ordinal));

    private ScramCredentialTable(ImmutableSortedDictionary<string, ImmutableDictionary<sbyte, ScramCredential>> users) => Users = users;

    /// <summary>Each user's credentials by mechanism type, users in ordinal order.</summary>
    public ImmutableSortedDictionary<string, ImmutableDictionary<sbyte, ScramCredential>> Users { get; }

    /// <summary>The credential of <paramref name="user"/> for <paramref name="mechanism"/>, or null.</summary>
    public ScramCredential? Find(ScramMechanism mechanism, string user) =>
        Users.TryGetValue(user, out var byMechanism) && byMechanism.TryGetValue(mechanism.Type, out var credential) ? credential : null;

    /// <summary>The table with <paramref name="record"/>'s credential in place of any before it (a record of an unknown mechanism: unchanged).</summary>
    public ScramCredentialTable With(UserScramCredentialRecord record)
    {
        if (ScramMechanism.FromType(record.Mechanism) is not { } mechanism || record.Name.Length == 0)
        {
            return this;
        }

        var credential = new ScramCredential(mechanism, record.Salt, record.StoredKey, record.ServerKey, record.Iterations);
        var byMechanism = Users.TryGetValue(record.Name, out var existing) ? existing : ImmutableDictionary<sbyte, ScramCredential>.Empty;
        return new ScramCredentialTable(Users.SetItem(record.Name, byMechanism.SetItem(mechanism.Type, credential)));
    }

    /// <summary>The table without the credential <paramref name="record"/> names.</summary>
    public ScramCredentialTable Without(RemoveUserScramCredentialRecord record)
    {
        if (!Users.TryGetValue(record.Name, out var byMechanism) || !byMechanism.ContainsKey(record.Mechanism))
        {
            return this;
        }

        var left = byMechanism.Remove(record.Mechanism);
        return new ScramCredentialTable(left.IsEmpty ? Users.Remove(record.Name) : Users.SetItem(record.Name, left));
    }

    /// <summary>The record that stores <paramref name="credential"/> for <paramref name="user"/>.</summary>
    public static UserScramCredentialRecord Record(string user, ScramCredential credential) => new()
    {
        Name = user,
        Mechanism = credential.Mechanism.Type,
        Salt = credential.Salt,
        StoredKey = credential.StoredKey,
        ServerKey = credential.ServerKey,
        Iterations = credential.Iterations,
    };
}
