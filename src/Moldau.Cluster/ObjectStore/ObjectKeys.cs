using System.Globalization;
using System.Security.Cryptography;

namespace Moldau.Cluster.ObjectStore;

/// <summary>
/// Names of the objects produce uploads create:
/// <code>
///   &lt;cluster&gt;/&lt;yyyy&gt;/&lt;MM&gt;/&lt;dd&gt;/&lt;ULID&gt;
///   moldau-1/2026/12/06/01KBV4ZQ3M0000000000000000
/// </code>
/// The ULID (26 Crockford base-32 characters: 48 bits of Unix milliseconds, 80 random bits) makes
/// every upload's key unique without coordination, so a create-only put never meets another
/// broker's object, and a retry of the same upload reuses its key. Keys sort by creation time
/// within a day, and the date path lets the sweep of uploaded-but-never-committed objects list one
/// day at a time. The cluster name first keeps several clusters apart in one bucket.
/// </summary>
public static class ObjectKeys
{
    private const string Crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    private const int UlidLength = 26;

    /// <summary>A new key for an upload made at <paramref name="now"/>, with 80 random bits.</summary>
    public static string NewProduceKey(string cluster, DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[10];
        RandomNumberGenerator.Fill(random);
        return ProduceKey(cluster, now, random);
    }

    /// <summary>The key for an upload at <paramref name="now"/> with the given 10 random bytes.</summary>
    public static string ProduceKey(string cluster, DateTimeOffset now, ReadOnlySpan<byte> random)
    {
        CheckCluster(cluster);
        if (random.Length != 10)
        {
            throw new ArgumentException("a ULID has 80 random bits (10 bytes)", nameof(random));
        }

        var utc = now.ToUniversalTime();
        return string.Create(CultureInfo.InvariantCulture, $"{DayPrefix(cluster, utc)}{Ulid(utc.ToUnixTimeMilliseconds(), random)}");
    }

    /// <summary>The prefix of every produce object of <paramref name="cluster"/>: <c>&lt;cluster&gt;/</c>.</summary>
    public static string ClusterPrefix(string cluster)
    {
        CheckCluster(cluster);
        return cluster + "/";
    }

    /// <summary>The prefix of the objects uploaded on <paramref name="day"/>'s UTC date: <c>&lt;cluster&gt;/yyyy/MM/dd/</c>.</summary>
    public static string DayPrefix(string cluster, DateTimeOffset day)
    {
        CheckCluster(cluster);
        var utc = day.ToUniversalTime();
        return string.Create(CultureInfo.InvariantCulture, $"{cluster}/{utc.Year:D4}/{utc.Month:D2}/{utc.Day:D2}/");
    }

    /// <summary>
    /// When a produce key was made (its ULID's milliseconds), or false when <paramref name="key"/>
    /// is not a produce key of this scheme.
    /// </summary>
    public static bool TryGetCreated(string key, out DateTimeOffset created)
    {
        created = default;
        var slash = key.LastIndexOf('/');
        var ulid = key.AsSpan(slash + 1);
        if (slash < 0 || ulid.Length != UlidLength || ulid[0] > '7')
        {
            return false;
        }

        long millis = 0;
        for (var i = 0; i < 10; i++)
        {
            var digit = Crockford.IndexOf(ulid[i]);
            if (digit < 0)
            {
                return false;
            }

            millis = (millis << 5) | (uint)digit;
        }

        foreach (var c in ulid[10..])
        {
            if (Crockford.IndexOf(c) < 0)
            {
                return false;
            }
        }

        created = DateTimeOffset.FromUnixTimeMilliseconds(millis);
        return true;
    }

    /// <summary>
    /// 128 bits (48-bit milliseconds, then the random bytes) as 26 base-32 digits, most significant
    /// first; the first digit holds only the top 3 bits (130 bits of digits, 2 always zero).
    /// </summary>
    private static string Ulid(long millis, ReadOnlySpan<byte> random)
    {
        if (millis is < 0 or >= 1L << 48)
        {
            throw new ArgumentOutOfRangeException(nameof(millis), "the time does not fit a ULID");
        }

        UInt128 value = (ulong)millis;
        foreach (var b in random)
        {
            value = (value << 8) | b;
        }

        Span<char> text = stackalloc char[UlidLength];
        for (var i = UlidLength - 1; i >= 0; i--)
        {
            text[i] = Crockford[(int)(value & 31)];
            value >>= 5;
        }

        return new string(text);
    }

    private static void CheckCluster(string cluster)
    {
        if (string.IsNullOrEmpty(cluster) || cluster.Length > 64 || !cluster.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException($"a cluster name for object keys is 1-64 characters of A-Z a-z 0-9 - _ . (got \"{cluster}\")", nameof(cluster));
        }
    }
}
