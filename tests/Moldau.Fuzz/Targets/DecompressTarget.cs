using Moldau.Protocol.Records;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// The four codecs on their own: the first byte picks gzip, snappy, lz4 or zstd (modulo 4), the
/// rest is a compressed records section. Corrupt data must end in
/// <see cref="Moldau.Protocol.KafkaProtocolException"/>; the harness's allocation limit catches
/// output that grows without bound.
/// </summary>
internal sealed class DecompressTarget : FuzzTarget
{
    public override string Name => "decompress";

    public override string Description => "RecordCompression.Decompress for gzip, snappy, lz4, zstd (first byte picks)";

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var codec = (CompressionType)(1 + (input.Span[0] % 4));
        RecordCompression.Decompress(codec, input[1..]);
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        var plain = SeedMessages.Batch()[RecordBatch.HeaderSize..];
        for (var c = 1; c <= 4; c++)
        {
            var compressed = RecordCompression.Compress((CompressionType)c, plain);
            yield return (((CompressionType)c).ToString().ToLowerInvariant(), [(byte)(c - 1), .. compressed]);
        }

        // A bare snappy block, without the xerial framing.
        yield return ("snappy-raw", [1, .. Snappier.Snappy.CompressToArray(plain)]);
    }
}
