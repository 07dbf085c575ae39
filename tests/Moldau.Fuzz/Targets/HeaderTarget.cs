using Moldau.Protocol;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// The request header alone: the first byte picks v1 (even) or v2 (odd), the rest is the header.
/// A header read twice into one instance (as the pooled Produce and Fetch headers are) must
/// read the same.
/// </summary>
internal sealed class HeaderTarget : FuzzTarget
{
    public override string Name => "header";

    public override string Description => "request header v1 or v2 (first byte's low bit)";

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var version = (short)(1 + (input.Span[0] & 1));
        var header = new RequestHeader();
        var reader = new KafkaReader(input[1..]);
        header.Read(ref reader, version);
        var size = header.Size(version);
        var bytes = new byte[size];
        var writer = new KafkaWriter(bytes);
        header.Write(ref writer, version);
        if (writer.Position != size)
        {
            throw new FuzzFinding($"header v{version} sized {size}, wrote {writer.Position}");
        }

        reader = new KafkaReader(input[1..]);
        header.Read(ref reader, version);
        if (header.Size(version) != size)
        {
            throw new FuzzFinding($"header v{version} read again into the same instance sized {header.Size(version)}, first {size}");
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (var version in new short[] { 1, 2 })
        {
            var header = new RequestHeader { ApiKey = 3, ApiVersion = 12, CorrelationId = 1, ClientId = "client-1" };
            if (version == 2)
            {
                header.UnknownTaggedFields = [new TaggedField(5, [1, 2])];
            }

            var bytes = new byte[1 + header.Size(version)];
            bytes[0] = (byte)(version - 1);
            var writer = new KafkaWriter(bytes.AsSpan(1));
            header.Write(ref writer, version);
            yield return ($"v{version}", bytes);
        }
    }
}
