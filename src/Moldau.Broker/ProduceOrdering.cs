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
    public static int? Key(ReadOnlyMemory<byte> frame)
    {
        try
        {
            var r = new KafkaReader(frame);
            if (r.ReadInt16() != (short)ApiKey.Produce)
            {
                return null;
            }

            var version = r.ReadInt16();
            if (version is < 3 or > 12)
            {
                return null; // v13 names topics by id; Moldau serves Produce up to v11
            }

            var flexible = version >= 9;
            r.Skip(4); // correlation id
            r.Skip(Math.Max(0, (int)r.ReadInt16())); // client id, a nullable string in every header version
            if (flexible)
            {
                for (var fields = r.ReadTaggedFieldCount(); fields > 0; fields--)
                {
                    r.ReadTaggedField(out _);
                }
            }

            r.Skip(Math.Max(0, StringLength(ref r, flexible))); // transactional id
            r.Skip(2 + 4); // acks, timeout
            if (r.ReadArrayLength(flexible) != 1)
            {
                return null;
            }

            var topic = r.ReadRawSpan(StringLength(ref r, flexible));
            if (r.ReadArrayLength(flexible) != 1)
            {
                return null;
            }

            var hash = new HashCode();
            hash.AddBytes(topic);
            hash.Add(r.ReadInt32());
            return hash.ToHashCode();
        }
        catch (Exception e) when (e is KafkaProtocolException or ArgumentOutOfRangeException)
        {
            return null; // Dispatch reports the bad request
        }
    }

    private static int StringLength(ref KafkaReader r, bool compact) => compact ? (int)r.ReadUnsignedVarInt() - 1 : r.ReadInt16();
}
