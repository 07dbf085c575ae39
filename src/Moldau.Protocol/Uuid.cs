using System.Buffers.Binary;

namespace Moldau.Protocol;

/// <summary>A Kafka UUID: 16 bytes on the wire, most significant half first.</summary>
public readonly record struct Uuid(long MostSignificantBits, long LeastSignificantBits)
{
    /// <summary>The all-zero id Kafka uses for "no topic id".</summary>
    public static readonly Uuid Zero = default;

    /// <summary>True when both halves are zero.</summary>
    public bool IsZero => MostSignificantBits == 0 && LeastSignificantBits == 0;

    /// <summary>A random (version 4) UUID, as Kafka's Uuid.randomUuid makes topic ids.</summary>
    public static Uuid NewRandom()
    {
        Span<byte> b = stackalloc byte[16];
        Guid.NewGuid().TryWriteBytes(b, bigEndian: true, out _);
        var u = FromBytes(b);
        // Kafka never hands out ids whose base64 form starts with '-' (first bit set) nor the zero id.
        return u.IsZero || u.MostSignificantBits < 0 ? NewRandom() : u;
    }

    /// <summary>Reads 16 big-endian bytes.</summary>
    public static Uuid FromBytes(ReadOnlySpan<byte> bytes) =>
        new(BinaryPrimitives.ReadInt64BigEndian(bytes), BinaryPrimitives.ReadInt64BigEndian(bytes[8..]));

    /// <summary>Writes 16 big-endian bytes.</summary>
    public void WriteTo(Span<byte> destination)
    {
        BinaryPrimitives.WriteInt64BigEndian(destination, MostSignificantBits);
        BinaryPrimitives.WriteInt64BigEndian(destination[8..], LeastSignificantBits);
    }

    /// <summary>Kafka's string form: URL-safe base64 without padding (22 characters).</summary>
    public override string ToString()
    {
        Span<byte> b = stackalloc byte[16];
        WriteTo(b);
        return Convert.ToBase64String(b).TrimEnd('=').Replace('+', '-').Replace('/', '_');
    }

    /// <summary>Parses Kafka's string form (as written in partition.metadata).</summary>
    public static Uuid Parse(string text)
    {
        var s = text.Trim().Replace('-', '+').Replace('_', '/');
        s = s.PadRight(s.Length + ((4 - (s.Length % 4)) % 4), '=');
        var bytes = Convert.FromBase64String(s);
        if (bytes.Length != 16)
        {
            throw new FormatException($"'{text}' is not a Kafka UUID");
        }

        return FromBytes(bytes);
    }
}
