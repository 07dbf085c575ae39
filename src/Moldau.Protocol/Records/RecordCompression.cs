using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ZstdSharp;

namespace Moldau.Protocol.Records;

/// <summary>
/// The four codecs of RecordBatch v2, used only where the broker must look inside a batch
/// (validation, timestamps, compaction): batches are stored and served as they arrived.
/// </summary>
/// <remarks>
/// gzip: RFC 1952. snappy: the xerial framing Kafka's Java client writes (an 8-byte magic, two
/// int32 versions, then blocks of int32 length + raw snappy), or a bare snappy block. lz4: the LZ4
/// frame format. zstd: a zstd frame, content size not required.
/// </remarks>
public static class RecordCompression
{
    private static readonly byte[] XerialMagic = [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];

    /// <summary>Decompresses a records section; throws <see cref="KafkaProtocolException"/> on corrupt data.</summary>
    public static byte[] Decompress(CompressionType type, ReadOnlyMemory<byte> data)
    {
        try
        {
            return type switch
            {
                CompressionType.None => data.ToArray(),
                CompressionType.Gzip => ReadAll(new GZipStream(AsStream(data), CompressionMode.Decompress)),
                CompressionType.Snappy => Snappy(data.Span),
                CompressionType.Lz4 => ReadAll(LZ4Stream.Decode(AsStream(data))),
                CompressionType.Zstd => ReadAll(new DecompressionStream(AsStream(data))),
                _ => throw new KafkaProtocolException($"unknown compression codec {(int)type}"),
            };
        }
        // NotImplementedException and NotSupportedException: the LZ4 reader's answer to frame
        // features it lacks (predefined dictionaries), which Kafka's clients never write.
        catch (Exception e) when (e is InvalidDataException or IOException or InvalidOperationException or ArgumentException or ZstdException or IndexOutOfRangeException or NotImplementedException or NotSupportedException)
        {
            throw new KafkaProtocolException($"{type} data does not decompress: {e.Message}");
        }
    }

    /// <summary>Compresses a records section with <paramref name="type"/>, in the framing Kafka's clients write.</summary>
    public static byte[] Compress(CompressionType type, ReadOnlySpan<byte> data)
    {
        switch (type)
        {
            case CompressionType.None:
                return data.ToArray();
            case CompressionType.Gzip:
                {
                    var output = new MemoryStream();
                    using (var gzip = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true))
                    {
                        gzip.Write(data);
                    }

                    return output.ToArray();
                }

            case CompressionType.Snappy:
                {
                    var output = new MemoryStream();
                    output.Write(XerialMagic);
                    Span<byte> header = stackalloc byte[8];
                    BinaryPrimitives.WriteInt32BigEndian(header, 1);
                    BinaryPrimitives.WriteInt32BigEndian(header[4..], 1);
                    output.Write(header);
                    for (var offset = 0; offset < data.Length || offset == 0; offset += 32 * 1024)
                    {
                        var block = data.Slice(offset, Math.Min(32 * 1024, data.Length - offset));
                        var compressed = Snappier.Snappy.CompressToArray(block);
                        BinaryPrimitives.WriteInt32BigEndian(header, compressed.Length);
                        output.Write(header[..4]);
                        output.Write(compressed);
                        if (data.Length == 0)
                        {
                            break;
                        }
                    }

                    return output.ToArray();
                }

            case CompressionType.Lz4:
                {
                    var output = new MemoryStream();
                    using (var lz4 = LZ4Stream.Encode(output, new LZ4EncoderSettings { ChainBlocks = false, CompressionLevel = LZ4Level.L00_FAST }, leaveOpen: true))
                    {
                        lz4.Write(data);
                    }

                    return output.ToArray();
                }

            case CompressionType.Zstd:
                {
                    using var compressor = new Compressor(3);
                    return compressor.Wrap(data).ToArray();
                }

            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, "unknown codec");
        }
    }

    private static byte[] Snappy(ReadOnlySpan<byte> data)
    {
        if (data.Length < 16 || !data[..8].SequenceEqual(XerialMagic))
        {
            return SnappyBlock(data);
        }

        var output = new MemoryStream();
        var rest = data[16..];
        while (rest.Length > 0)
        {
            if (rest.Length < 4)
            {
                throw new KafkaProtocolException("truncated xerial snappy block header");
            }

            var length = BinaryPrimitives.ReadInt32BigEndian(rest);
            if (length < 0 || length > rest.Length - 4)
            {
                throw new KafkaProtocolException($"xerial snappy block of {length} bytes in {rest.Length - 4}");
            }

            output.Write(SnappyBlock(rest.Slice(4, length)));
            rest = rest[(4 + length)..];
        }

        return output.ToArray();
    }

    /// <summary>
    /// No element of a snappy block yields more than 64 bytes for the 3 it takes (a copy with a
    /// 2-byte offset), so a block can't decompress to more than 22 times its size.
    /// </summary>
    private const int SnappyMaxExpansion = 22;

    /// <summary>
    /// One raw snappy block. It starts with its uncompressed length, and the decoder allocates that
    /// much before it reads the data: checked first, or 8 bytes could ask for 4 GiB.
    /// </summary>
    private static byte[] SnappyBlock(ReadOnlySpan<byte> block)
    {
        var declared = Snappier.Snappy.GetUncompressedLength(block);
        if (declared < 0 || declared > (long)SnappyMaxExpansion * block.Length)
        {
            throw new KafkaProtocolException($"snappy block of {block.Length} bytes declares {declared} uncompressed");
        }

        return Snappier.Snappy.DecompressToArray(block);
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> data) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);

    private static byte[] ReadAll(Stream stream)
    {
        using (stream)
        {
            var output = new MemoryStream();
            stream.CopyTo(output);
            return output.ToArray();
        }
    }
}
