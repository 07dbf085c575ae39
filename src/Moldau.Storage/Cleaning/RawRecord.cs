using Moldau.Protocol;

namespace Moldau.Storage.Cleaning;

/// <summary>
/// One record of a batch, split where the cleaner needs it: the fields that depend on the batch
/// header (timestamp delta, offset delta) are decoded, and everything from the key on is kept as
/// the bytes that were written, so a retained record is written back exactly (header keys and
/// all), only its timestamp delta recomputed when the batch's base timestamp changes.
/// </summary>
/// <remarks>See <see cref="Moldau.Protocol.Records.Record"/> for the record layout.</remarks>
/// <param name="Attributes">The record's attribute byte.</param>
/// <param name="Timestamp">base_timestamp + timestamp_delta.</param>
/// <param name="OffsetDelta">From the batch's base offset.</param>
/// <param name="Key">The key, or null.</param>
/// <param name="IsTombstone">True when the value is null.</param>
/// <param name="Rest">key_length, key, value_length, value, header_count, headers: as written.</param>
internal readonly record struct RawRecord(sbyte Attributes, long Timestamp, int OffsetDelta, ReadOnlyMemory<byte>? Key, bool IsTombstone, ReadOnlyMemory<byte> Rest)
{
    /// <summary>Splits the <paramref name="count"/> records of an uncompressed records section.</summary>
    public static List<RawRecord> Parse(ReadOnlyMemory<byte> section, int count, long baseTimestamp)
    {
        var records = new List<RawRecord>(Math.Clamp(count, 0, 4096));
        var reader = new KafkaReader(section);
        for (var i = 0; i < count; i++)
        {
            var length = reader.ReadVarInt();
            if (length < 0 || length > reader.Remaining)
            {
                throw new KafkaProtocolException($"record of {length} bytes in {reader.Remaining}");
            }

            var body = section.Slice(reader.Position, length);
            reader.Skip(length);
            var r = new KafkaReader(body);
            var attributes = r.ReadInt8();
            var timestampDelta = r.ReadVarLong();
            var offsetDelta = r.ReadVarInt();
            var restStart = r.Position;
            var keyLength = r.ReadVarInt();
            if (keyLength < -1 || keyLength > r.Remaining)
            {
                throw new KafkaProtocolException($"key of {keyLength} bytes in {r.Remaining}");
            }

            ReadOnlyMemory<byte>? key = null;
            if (keyLength >= 0)
            {
                key = r.ReadRawSlice(keyLength);
            }

            var valueLength = r.ReadVarInt();
            if (valueLength < -1 || valueLength > r.Remaining)
            {
                throw new KafkaProtocolException($"value of {valueLength} bytes in {r.Remaining}");
            }

            records.Add(new RawRecord(attributes, baseTimestamp + timestampDelta, offsetDelta, key, valueLength < 0, body[restStart..]));
        }

        return records;
    }
}
