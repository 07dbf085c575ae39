using System.Buffers.Binary;
using Moldau.Protocol;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// Every generated request decoder. The input picks the decoder:
/// <code>
/// api_key  int16   taken modulo the number of request types (so every input reaches one)
/// version  int16   taken modulo the type's version range
/// body     rest    the request body as it follows the header
/// </code>
/// The body is decoded twice into the same instance (the broker reuses Produce and Fetch
/// requests), and what decodes is written back: sizing and writing a decoded message must not
/// throw, and must agree with each other.
/// </summary>
internal sealed class RequestTarget : FuzzTarget
{
    public override string Name => "request";

    public override string Description => "every generated request decoder, picked by the input's first 4 bytes";

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length < 4)
        {
            return;
        }

        var (type, version) = Pick(input.Span);
        var body = input[4..];
        var message = type.Create();
        Decode(message, body, version);
        var first = message.ToBytes(version);
        // Again into the same instance: the reuse path keeps lists and strings from the last read.
        Decode(message, body, version);
        var second = message.ToBytes(version);
        if (!first.AsSpan().SequenceEqual(second))
        {
            throw new FuzzFinding($"{type.Name} v{version}: decoding the same bytes into a reused instance wrote {second.Length} bytes, a fresh one {first.Length}");
        }
    }

    /// <summary>The type and version that <paramref name="input"/>'s first 4 bytes pick.</summary>
    public static (RequestType Type, short Version) Pick(ReadOnlySpan<byte> input)
    {
        var types = RequestTypes.All;
        var type = types[BinaryPrimitives.ReadUInt16BigEndian(input) % types.Count];
        var range = type.HighestVersion - type.LowestVersion + 1;
        var version = (short)(type.LowestVersion + (BinaryPrimitives.ReadUInt16BigEndian(input[2..]) % range));
        return (type, version);
    }

    private static void Decode(IKafkaMessage message, ReadOnlyMemory<byte> body, short version)
    {
        var reader = new KafkaReader(body);
        message.Read(ref reader, version);
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        var types = RequestTypes.All;
        for (var i = 0; i < types.Count; i++)
        {
            var type = types[i];
            foreach (var version in new[] { type.LowestVersion, type.HighestVersion }.Distinct())
            {
                var body = SeedMessages.Encode(type, version);
                if (body is null)
                {
                    continue;
                }

                var bytes = new byte[4 + body.Length];
                BinaryPrimitives.WriteUInt16BigEndian(bytes, (ushort)i);
                BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(2), (ushort)(version - type.LowestVersion));
                body.CopyTo(bytes, 4);
                yield return ($"{type.Name}-v{version}", bytes);
            }
        }
    }
}
