namespace Moldau.Protocol.Records;

/// <summary>
/// One record of an uncompressed batch.
/// </summary>
/// <remarks>
/// <code>
/// length            varint   bytes after this field
/// attributes        int8     unused, 0
/// timestamp_delta   varlong  from the batch's base_timestamp
/// offset_delta      varint   from the batch's base_offset
/// key_length        varint   -1 for a null key
/// key               bytes
/// value_length      varint   -1 for a null value (a tombstone)
/// value             bytes
/// header_count      varint   -1 is read as "no headers" (Kafka never writes it, some tools do)
/// headers           header_count x (key_length varint, key, value_length varint, value)
/// </code>
/// </remarks>
public readonly record struct Record(
    sbyte Attributes,
    long TimestampDelta,
    int OffsetDelta,
    ReadOnlyMemory<byte>? Key,
    ReadOnlyMemory<byte>? Value,
    IReadOnlyList<RecordHeader> Headers);

/// <summary>A record header: a string key and a nullable value.</summary>
public readonly record struct RecordHeader(string Key, ReadOnlyMemory<byte>? Value);

/// <summary>Walks the records of an uncompressed batch's records section.</summary>
public struct RecordEnumerator
{
    private readonly ReadOnlyMemory<byte> _section;
    private readonly int _count;
    private int _position;
    private int _index;

    internal RecordEnumerator(ReadOnlyMemory<byte> section, int count)
    {
        _section = section;
        _count = count;
        _position = 0;
        _index = 0;
        Current = default;
    }

    /// <summary>The current record.</summary>
    public Record Current { get; private set; }

    /// <summary>Supports foreach.</summary>
    public readonly RecordEnumerator GetEnumerator() => this;

    /// <summary>Moves to the next record; throws <see cref="KafkaProtocolException"/> on malformed bytes.</summary>
    public bool MoveNext()
    {
        if (_index >= _count)
        {
            return false;
        }

        var reader = new KafkaReader(_section[_position..]);
        var length = reader.ReadVarInt();
        if (length < 0 || length > reader.Remaining)
        {
            throw new KafkaProtocolException($"record of {length} bytes in {reader.Remaining}");
        }

        var start = reader.Position;
        var body = new KafkaReader(_section.Slice(_position + start, length));
        var attributes = body.ReadInt8();
        var timestampDelta = body.ReadVarLong();
        var offsetDelta = body.ReadVarInt();
        var key = ReadVarBytes(ref body);
        var value = ReadVarBytes(ref body);
        var headerCount = body.ReadVarInt();
        IReadOnlyList<RecordHeader> headers = [];
        if (headerCount > 0)
        {
            if (headerCount > body.Remaining)
            {
                throw new KafkaProtocolException($"{headerCount} headers in {body.Remaining} bytes");
            }

            var list = new List<RecordHeader>(headerCount);
            for (var i = 0; i < headerCount; i++)
            {
                var k = ReadVarBytes(ref body) ?? throw new KafkaProtocolException("null header key");
                list.Add(new RecordHeader(System.Text.Encoding.UTF8.GetString(k.Span), ReadVarBytes(ref body)));
            }

            headers = list;
        }
        else if (headerCount < -1)
        {
            throw new KafkaProtocolException($"header count {headerCount}");
        }

        Current = new Record(attributes, timestampDelta, offsetDelta, key, value, headers);
        _position += start + length;
        _index++;
        return true;
    }

    private static ReadOnlyMemory<byte>? ReadVarBytes(ref KafkaReader reader)
    {
        var length = reader.ReadVarInt();
        if (length < -1 || length > reader.Remaining)
        {
            throw new KafkaProtocolException($"field of {length} bytes in {reader.Remaining}");
        }

        // Not a conditional expression: null would convert through byte[] to an empty, non-null memory.
        if (length < 0)
        {
            return null;
        }

        return reader.ReadRawSlice(length);
    }
}
