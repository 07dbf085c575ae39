using System.Buffers.Binary;
using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>
/// The ordering key of a request (see <see cref="IRequestDispatcher.OrderingKey"/>): a Produce
/// request for one partition only (what librdkafka sends) is keyed by that partition, so big
/// batches for different partitions of one connection can be written at once. Everything else,
/// and anything that doesn't parse, has no key and keeps strict order.
/// </summary>
internal static class ProduceOrdering
{
    /// <summary>The key of <paramref name="frame"/> (request header and body), or null.</summary>
    public static int? Key(ReadOnlySpan<byte> frame)
    {
        try
        {
            var r = new SpanReader(frame);
            if (r.Int16() != (short)ApiKey.Produce)
            {
                return null;
            }

            var version = r.Int16();
            if (version is < 3 or > 12)
            {
                return null; // v13 names topics by id; Moldau serves Produce up to v11
            }

            var flexible = version >= 9;
            r.Skip(4); // correlation id
            r.Skip(Math.Max(0, (int)r.Int16())); // client id, a nullable string in every header version
            if (flexible)
            {
                r.SkipTaggedFields();
            }

            r.SkipNullableString(flexible); // transactional id
            r.Skip(2 + 4); // acks, timeout
            if (r.ArrayLength(flexible) != 1)
            {
                return null;
            }

            var topic = r.Take(r.StringLength(flexible));
            if (r.ArrayLength(flexible) != 1)
            {
                return null;
            }

            var partition = r.Int32();
            var hash = new HashCode();
            hash.AddBytes(topic);
            hash.Add(partition);
            return hash.ToHashCode();
        }
        catch (ArgumentOutOfRangeException)
        {
            return null; // truncated: Dispatch reports the bad request
        }
    }

    private ref struct SpanReader(ReadOnlySpan<byte> bytes)
    {
        private ReadOnlySpan<byte> _rest = bytes;

        public ReadOnlySpan<byte> Take(int count)
        {
            var taken = _rest[..count];
            _rest = _rest[count..];
            return taken;
        }

        public void Skip(int count) => Take(count);

        public short Int16() => BinaryPrimitives.ReadInt16BigEndian(Take(2));

        public int Int32() => BinaryPrimitives.ReadInt32BigEndian(Take(4));

        public uint UnsignedVarInt()
        {
            uint value = 0;
            for (var shift = 0; shift < 35; shift += 7)
            {
                var b = Take(1)[0];
                value |= (uint)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                {
                    return value;
                }
            }

            throw new ArgumentOutOfRangeException(nameof(UnsignedVarInt), "varint too long");
        }

        public int ArrayLength(bool compact) => compact ? (int)UnsignedVarInt() - 1 : Int32();

        public int StringLength(bool compact) => compact ? (int)UnsignedVarInt() - 1 : Int16();

        public void SkipNullableString(bool compact) => Skip(Math.Max(0, StringLength(compact)));

        public void SkipTaggedFields()
        {
            var count = UnsignedVarInt();
            for (var i = 0; i < count; i++)
            {
                _ = UnsignedVarInt();
                Skip((int)UnsignedVarInt());
            }
        }
    }
}
