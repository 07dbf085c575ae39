using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Text;

namespace Moldau.Protocol;

/// <summary>
/// Reads Kafka's primitive types from a buffer. Every read checks bounds and throws
/// <see cref="KafkaProtocolException"/> on truncated or malformed input, never anything else.
/// </summary>
/// <remarks>
/// Holds the buffer as memory so that <c>records</c> and raw byte fields can be sliced out
/// without copying.
/// </remarks>
public ref struct KafkaReader
{
    private readonly ReadOnlyMemory<byte> _memory;
    private readonly ReadOnlySpan<byte> _span;
    private int _position;

    /// <summary>Reads from <paramref name="buffer"/>, starting at its first byte.</summary>
    public KafkaReader(ReadOnlyMemory<byte> buffer)
    {
        _memory = buffer;
        _span = buffer.Span;
        _position = 0;
    }

    /// <summary>Bytes read so far.</summary>
    public readonly int Position => _position;

    /// <summary>Bytes not yet read.</summary>
    public readonly int Remaining => _span.Length - _position;

    /// <summary>The unread part of the buffer.</summary>
    public readonly ReadOnlyMemory<byte> RemainingMemory => _memory[_position..];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ReadOnlySpan<byte> Take(int count)
    {
        if ((uint)count > (uint)(_span.Length - _position))
        {
            Throw(count);
        }

        var s = _span.Slice(_position, count);
        _position += count;
        return s;
    }

    private readonly void Throw(int count) =>
        throw new KafkaProtocolException($"need {count} bytes at offset {_position}, have {_span.Length - _position}");

    /// <summary>Skips <paramref name="count"/> bytes.</summary>
    public void Skip(int count) => Take(count);

    /// <summary>Reads a boolean (one byte, non-zero is true).</summary>
    public bool ReadBool() => Take(1)[0] != 0;

    /// <summary>Reads a signed byte.</summary>
    public sbyte ReadInt8() => (sbyte)Take(1)[0];

    /// <summary>Reads a big-endian int16.</summary>
    public short ReadInt16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));

    /// <summary>Reads a big-endian uint16.</summary>
    public ushort ReadUInt16() => BinaryPrimitives.ReadUInt16BigEndian(Take(2));

    /// <summary>Reads a big-endian int32.</summary>
    public int ReadInt32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

    /// <summary>Reads a big-endian uint32.</summary>
    public uint ReadUInt32() => BinaryPrimitives.ReadUInt32BigEndian(Take(4));

    /// <summary>Reads a big-endian int64.</summary>
    public long ReadInt64() => BinaryPrimitives.ReadInt64BigEndian(Take(8));

    /// <summary>Reads a big-endian IEEE 754 double.</summary>
    public double ReadFloat64() => BinaryPrimitives.ReadDoubleBigEndian(Take(8));

    /// <summary>Reads a 16-byte UUID.</summary>
    public Uuid ReadUuid() => Uuid.FromBytes(Take(16));

    /// <summary>Reads an unsigned LEB128 varint of at most 5 bytes.</summary>
    public uint ReadUnsignedVarInt()
    {
        uint value = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = Take(1)[0];
            if (shift == 28 && b > 0x0F)
            {
                throw new KafkaProtocolException("unsigned varint overflows 32 bits");
            }

            value |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new KafkaProtocolException("unsigned varint longer than 5 bytes");
    }

    /// <summary>Reads a zig-zag encoded varint (int32).</summary>
    public int ReadVarInt()
    {
        var raw = ReadUnsignedVarInt();
        return (int)(raw >> 1) ^ -(int)(raw & 1);
    }

    /// <summary>Reads an unsigned LEB128 varlong of at most 10 bytes.</summary>
    public ulong ReadUnsignedVarLong()
    {
        ulong value = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = Take(1)[0];
            if (shift == 63 && b > 0x01)
            {
                throw new KafkaProtocolException("varlong overflows 64 bits");
            }

            value |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return value;
            }
        }

        throw new KafkaProtocolException("varlong longer than 10 bytes");
    }

    /// <summary>Reads a zig-zag encoded varlong (int64).</summary>
    public long ReadVarLong()
    {
        var raw = ReadUnsignedVarLong();
        return (long)(raw >> 1) ^ -(long)(raw & 1);
    }

    /// <summary>Reads a length: int16 (classic string) or unsigned varint minus one (compact).</summary>
    private int ReadStringLength(bool compact) => compact ? (int)ReadUnsignedVarInt() - 1 : ReadInt16();

    /// <summary>Reads a non-null string (int16 length, or compact when <paramref name="compact"/>).</summary>
    public string ReadString(bool compact)
    {
        var s = ReadNullableString(compact);
        return s ?? throw new KafkaProtocolException("null where a non-nullable string was expected");
    }

    /// <summary>Reads a string that may be null (length -1).</summary>
    public string? ReadNullableString(bool compact)
    {
        var length = ReadStringLength(compact);
        if (length < 0)
        {
            return length == -1 ? null : throw new KafkaProtocolException($"string length {length}");
        }

        return length == 0 ? string.Empty : Encoding.UTF8.GetString(Take(length));
    }

    /// <summary>
    /// Reads a non-null string, returning <paramref name="previous"/> itself when the bytes are
    /// its ASCII text: a reused message keeps the strings it held (topic names, client ids) rather
    /// than decoding a new one per request.
    /// </summary>
    public string ReadString(bool compact, string? previous)
    {
        var s = ReadNullableString(compact, previous);
        return s ?? throw new KafkaProtocolException("null where a non-nullable string was expected");
    }

    /// <summary>Reads a string that may be null, returning <paramref name="previous"/> when the bytes are its ASCII text.</summary>
    public string? ReadNullableString(bool compact, string? previous)
    {
        var length = ReadStringLength(compact);
        if (length < 0)
        {
            return length == -1 ? null : throw new KafkaProtocolException($"string length {length}");
        }

        if (length == 0)
        {
            return string.Empty;
        }

        var bytes = Take(length);
        // Ascii.Equals is false for any byte or char above 0x7F: other text is decoded afresh.
        return previous is not null && previous.Length == length && Ascii.Equals(bytes, previous)
            ? previous
            : Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Reads the length of a byte field (int32, or compact) or -1 for null.</summary>
    public int ReadBytesLength(bool compact)
    {
        var length = compact ? (int)ReadUnsignedVarInt() - 1 : ReadInt32();
        if (length < -1)
        {
            throw new KafkaProtocolException($"bytes length {length}");
        }

        if (length > Remaining)
        {
            Throw(length);
        }

        return length;
    }

    /// <summary>Reads a byte field into a new array; null when the length is -1.</summary>
    public byte[]? ReadNullableBytes(bool compact)
    {
        var length = ReadBytesLength(compact);
        return length < 0 ? null : Take(length).ToArray();
    }

    /// <summary>Reads a non-null byte field into a new array.</summary>
    public byte[] ReadBytes(bool compact) =>
        ReadNullableBytes(compact) ?? throw new KafkaProtocolException("null where non-nullable bytes were expected");

    /// <summary>Reads a byte field as a slice of the underlying buffer, without copying.</summary>
    public ReadOnlyMemory<byte>? ReadNullableBytesSlice(bool compact)
    {
        var length = ReadBytesLength(compact);
        if (length < 0)
        {
            return null;
        }

        var slice = _memory.Slice(_position, length);
        _position += length;
        return slice;
    }

    /// <summary>Reads a raw run of bytes as a slice of the underlying buffer.</summary>
    public ReadOnlyMemory<byte> ReadRawSlice(int count)
    {
        Take(count);
        return _memory.Slice(_position - count, count);
    }

    /// <summary>Reads a raw run of bytes as a span of the underlying buffer.</summary>
    public ReadOnlySpan<byte> ReadRawSpan(int count) => Take(count);

    /// <summary>
    /// Reads an array length (int32, or compact) and returns -1 for null. The count is checked
    /// against the bytes left, one byte per element at least, so a hostile length can't make the
    /// caller allocate more than the frame holds.
    /// </summary>
    public int ReadArrayLength(bool compact)
    {
        var length = compact ? (int)ReadUnsignedVarInt() - 1 : ReadInt32();
        if (length < -1)
        {
            throw new KafkaProtocolException($"array length {length}");
        }

        if (length > Remaining)
        {
            throw new KafkaProtocolException($"array of {length} elements in {Remaining} bytes");
        }

        return length;
    }

    /// <summary>
    /// Reads the number of tagged fields that follow, checked against the bytes left.
    /// </summary>
    public int ReadTaggedFieldCount()
    {
        var count = ReadUnsignedVarInt();
        if (count > (uint)Remaining)
        {
            throw new KafkaProtocolException($"{count} tagged fields in {Remaining} bytes");
        }

        return (int)count;
    }

    /// <summary>Reads one tagged field's tag and size and returns its data as a slice.</summary>
    public ReadOnlyMemory<byte> ReadTaggedField(out int tag)
    {
        var t = ReadUnsignedVarInt();
        if (t > int.MaxValue)
        {
            throw new KafkaProtocolException($"tag {t}");
        }

        tag = (int)t;
        var size = ReadUnsignedVarInt();
        if (size > (uint)Remaining)
        {
            throw new KafkaProtocolException($"tagged field {tag} of {size} bytes in {Remaining}");
        }

        return ReadRawSlice((int)size);
    }

    /// <summary>Reads a whole tagged-field section, keeping every field as unknown.</summary>
    public List<TaggedField>? ReadUnknownTaggedFields()
    {
        List<TaggedField>? fields = null;
        var count = ReadTaggedFieldCount();
        for (var i = 0; i < count; i++)
        {
            var data = ReadTaggedField(out var tag);
            (fields ??= []).Add(new TaggedField(tag, data.ToArray()));
        }

        return fields;
    }
}
