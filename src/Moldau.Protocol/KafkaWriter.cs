using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Moldau.Protocol;

/// <summary>
/// Writes Kafka's primitive types into a span sized beforehand (messages compute their size
/// first, as Kafka's generated code does, so the writer never grows or copies).
/// </summary>
public ref struct KafkaWriter
{
    private readonly Span<byte> _span;
    private int _position;

    /// <summary>Writes into <paramref name="destination"/> from its first byte.</summary>
    public KafkaWriter(Span<byte> destination)
    {
        _span = destination;
        _position = 0;
    }

    /// <summary>Bytes written so far.</summary>
    public readonly int Position => _position;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Span<byte> Take(int count)
    {
        var s = _span.Slice(_position, count);
        _position += count;
        return s;
    }

    /// <summary>Writes a boolean as one byte.</summary>
    public void WriteBool(bool value) => Take(1)[0] = value ? (byte)1 : (byte)0;

    /// <summary>Writes a signed byte.</summary>
    public void WriteInt8(sbyte value) => Take(1)[0] = (byte)value;

    /// <summary>Writes a big-endian int16.</summary>
    public void WriteInt16(short value) => BinaryPrimitives.WriteInt16BigEndian(Take(2), value);

    /// <summary>Writes a big-endian uint16.</summary>
    public void WriteUInt16(ushort value) => BinaryPrimitives.WriteUInt16BigEndian(Take(2), value);

    /// <summary>Writes a big-endian int32.</summary>
    public void WriteInt32(int value) => BinaryPrimitives.WriteInt32BigEndian(Take(4), value);

    /// <summary>Writes a big-endian uint32.</summary>
    public void WriteUInt32(uint value) => BinaryPrimitives.WriteUInt32BigEndian(Take(4), value);

    /// <summary>Writes a big-endian int64.</summary>
    public void WriteInt64(long value) => BinaryPrimitives.WriteInt64BigEndian(Take(8), value);

    /// <summary>Writes a big-endian IEEE 754 double.</summary>
    public void WriteFloat64(double value) => BinaryPrimitives.WriteDoubleBigEndian(Take(8), value);

    /// <summary>Writes a 16-byte UUID.</summary>
    public void WriteUuid(Uuid value) => value.WriteTo(Take(16));

    /// <summary>Writes an unsigned LEB128 varint.</summary>
    public void WriteUnsignedVarInt(uint value)
    {
        while (value >= 0x80)
        {
            Take(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }

        Take(1)[0] = (byte)value;
    }

    /// <summary>Writes a zig-zag encoded varint.</summary>
    public void WriteVarInt(int value) => WriteUnsignedVarInt((uint)((value << 1) ^ (value >> 31)));

    /// <summary>Writes an unsigned LEB128 varlong.</summary>
    public void WriteUnsignedVarLong(ulong value)
    {
        while (value >= 0x80)
        {
            Take(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }

        Take(1)[0] = (byte)value;
    }

    /// <summary>Writes a zig-zag encoded varlong.</summary>
    public void WriteVarLong(long value) => WriteUnsignedVarLong((ulong)((value << 1) ^ (value >> 63)));

    /// <summary>Writes a length prefix: int16 or int32 classic, unsigned varint plus one compact.</summary>
    private void WriteLength(int length, bool compact, bool wide)
    {
        if (compact)
        {
            WriteUnsignedVarInt((uint)(length + 1));
        }
        else if (wide)
        {
            WriteInt32(length);
        }
        else
        {
            WriteInt16((short)length);
        }
    }

    /// <summary>Writes a string that may be null.</summary>
    public void WriteNullableString(string? value, bool compact)
    {
        if (value is null)
        {
            WriteLength(-1, compact, wide: false);
            return;
        }

        var length = Encoding.UTF8.GetByteCount(value);
        WriteLength(length, compact, wide: false);
        Encoding.UTF8.GetBytes(value, Take(length));
    }

    /// <summary>Writes a string (a null is written as empty).</summary>
    public void WriteString(string? value, bool compact) => WriteNullableString(value ?? string.Empty, compact);

    /// <summary>Writes a byte field that may be null.</summary>
    public void WriteNullableBytes(ReadOnlySpan<byte> value, bool isNull, bool compact)
    {
        if (isNull)
        {
            WriteLength(-1, compact, wide: true);
            return;
        }

        WriteLength(value.Length, compact, wide: true);
        value.CopyTo(Take(value.Length));
    }

    /// <summary>Writes an array length prefix (-1 for null).</summary>
    public void WriteArrayLength(int count, bool compact) => WriteLength(count, compact, wide: true);

    /// <summary>Copies raw bytes.</summary>
    public void WriteRaw(ReadOnlySpan<byte> bytes) => bytes.CopyTo(Take(bytes.Length));

    /// <summary>Writes the unknown tagged fields kept from a read, each as tag, size, data.</summary>
    public void WriteTaggedField(int tag, ReadOnlySpan<byte> data)
    {
        WriteUnsignedVarInt((uint)tag);
        WriteUnsignedVarInt((uint)data.Length);
        WriteRaw(data);
    }
}

/// <summary>Sizes of Kafka's primitive encodings, for the size pass before writing.</summary>
public static class KafkaSize
{
    /// <summary>Bytes of an unsigned varint.</summary>
    public static int UnsignedVarInt(uint value) => value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : value < 0x10000000 ? 4 : 5;

    /// <summary>Bytes of a zig-zag varint.</summary>
    public static int VarInt(int value) => UnsignedVarInt((uint)((value << 1) ^ (value >> 31)));

    /// <summary>Bytes of an unsigned varlong.</summary>
    public static int UnsignedVarLong(ulong value)
    {
        var n = 1;
        while (value >= 0x80)
        {
            value >>= 7;
            n++;
        }

        return n;
    }

    /// <summary>Bytes of a zig-zag varlong.</summary>
    public static int VarLong(long value) => UnsignedVarLong((ulong)((value << 1) ^ (value >> 63)));

    /// <summary>Bytes of a length prefix.</summary>
    public static int Length(int length, bool compact, bool wide) => compact ? UnsignedVarInt((uint)(length + 1)) : wide ? 4 : 2;

    /// <summary>Bytes of a nullable string with its prefix.</summary>
    public static int NullableString(string? value, bool compact)
    {
        if (value is null)
        {
            return Length(-1, compact, wide: false);
        }

        var n = Encoding.UTF8.GetByteCount(value);
        return Length(n, compact, wide: false) + n;
    }

    /// <summary>Bytes of a string with its prefix (null counts as empty).</summary>
    public static int String(string? value, bool compact) => NullableString(value ?? string.Empty, compact);

    /// <summary>Bytes of a byte field with its prefix.</summary>
    public static int NullableBytes(int length, bool isNull, bool compact) =>
        isNull ? Length(-1, compact, wide: true) : Length(length, compact, wide: true) + length;

    /// <summary>Bytes of an array length prefix.</summary>
    public static int ArrayLength(int count, bool compact) => Length(count, compact, wide: true);

    /// <summary>Bytes of one tagged field with its tag and size.</summary>
    public static int TaggedField(int tag, int dataLength) => UnsignedVarInt((uint)tag) + UnsignedVarInt((uint)dataLength) + dataLength;
}
