using System.Buffers.Binary;
using System.IO.Compression;
using K4os.Compression.LZ4;
using K4os.Compression.LZ4.Streams;
using ZstdSharp;
using ZstdSharp.Unsafe;

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

    /// <summary>
    /// The most bytes one batch's records may inflate to: 64 MiB, 64 times the default
    /// <c>message.max.bytes</c>. A batch past it is refused with MESSAGE_TOO_LARGE and skipped by
    /// the readers that only look inside batches (timestamps, compaction).
    /// </summary>
    public const long MaxDecompressedBytes = 64L * 1024 * 1024;

    /// <summary>The largest zstd window a frame may ask for, as a power of two: 16 MiB (zstd's own default cap is 2^27).</summary>
    public const int ZstdWindowLogMax = 24;

    /// <summary>
    /// A stream of the records a compressed section inflates to. It holds at most one codec window
    /// (zstd 16 MiB, lz4 4 MiB blocks, gzip 32 KiB, snappy one block), throws
    /// <see cref="RecordsTooLargeException"/> past <paramref name="maxBytes"/> and
    /// <see cref="KafkaProtocolException"/> for anything else it cannot read (an unknown codec too).
    /// </summary>
    public static Stream OpenDecompressor(CompressionType type, ReadOnlyMemory<byte> data, long maxBytes = MaxDecompressedBytes)
    {
        try
        {
            Stream inner = type switch
            {
                CompressionType.None => AsStream(data),
                CompressionType.Gzip => new GZipStream(AsStream(data), CompressionMode.Decompress),
                CompressionType.Snappy => new SnappyDecompressionStream(data, maxBytes),
                CompressionType.Lz4 => LZ4Stream.Decode(AsStream(data)),
                CompressionType.Zstd => Zstd(data),
                _ => throw new KafkaProtocolException($"unknown compression codec {(int)type}"),
            };
            return new BoundedDecompressionStream(inner, type, maxBytes);
        }
        catch (Exception e) when (e is not KafkaProtocolException && BoundedDecompressionStream.IsCodecError(e))
        {
            throw new KafkaProtocolException($"{type} data does not decompress: {e.Message}");
        }
    }

    /// <summary>
    /// Decompresses a records section whole (the cleaner rewrites records and needs them all),
    /// bounded as <see cref="OpenDecompressor"/> is; throws <see cref="KafkaProtocolException"/> on corrupt data.
    /// </summary>
    public static byte[] Decompress(CompressionType type, ReadOnlyMemory<byte> data, long maxBytes = MaxDecompressedBytes)
    {
        if (type == CompressionType.None)
        {
            return data.ToArray();
        }

        using var stream = OpenDecompressor(type, data, maxBytes);
        var output = new MemoryStream();
        stream.CopyTo(output);
        return output.ToArray();
    }

    private static DecompressionStream Zstd(ReadOnlyMemory<byte> data)
    {
        var stream = new DecompressionStream(AsStream(data));
        stream.SetParameter(ZSTD_dParameter.ZSTD_d_windowLogMax, ZstdWindowLogMax);
        return stream;
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

    /// <summary>The codec a RecordBatch v2's attributes name.</summary>
    public static CompressionType CodecOf(ReadOnlySpan<byte> batch) =>
        (CompressionType)(BinaryPrimitives.ReadInt16BigEndian(batch[RecordBatch.AttributesOffset..]) & 0x07);

    /// <summary>
    /// The same batch with its records in <paramref name="target"/>, as Kafka's LogValidator
    /// re-compresses for a topic's <c>compression.type</c>: the records section inflated (bounded
    /// by <paramref name="maxBytes"/>) and compressed again, then the batch length, the codec bits
    /// and the CRC rewritten. Every other header field (offsets, timestamps, producer id, epoch and
    /// sequence, the transactional bit) stays as it was. Only for a batch already validated.
    /// </summary>
    public static byte[] Recompress(ReadOnlySpan<byte> batch, CompressionType target, long maxBytes = MaxDecompressedBytes)
    {
        var source = CodecOf(batch);
        var section = batch[RecordBatch.HeaderSize..];
        var plain = source == CompressionType.None ? section.ToArray() : Decompress(source, section.ToArray(), maxBytes);
        var records = target == CompressionType.None ? plain : Compress(target, plain);
        var result = new byte[RecordBatch.HeaderSize + records.Length];
        batch[..RecordBatch.HeaderSize].CopyTo(result);
        records.CopyTo(result.AsSpan(RecordBatch.HeaderSize));
        BinaryPrimitives.WriteInt32BigEndian(result.AsSpan(RecordBatch.LogOverhead - 4), result.Length - RecordBatch.LogOverhead);
        var attributes = BinaryPrimitives.ReadInt16BigEndian(result.AsSpan(RecordBatch.AttributesOffset));
        BinaryPrimitives.WriteInt16BigEndian(result.AsSpan(RecordBatch.AttributesOffset), (short)((attributes & ~0x07) | (int)target));
        BinaryPrimitives.WriteUInt32BigEndian(result.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(result.AsSpan(RecordBatch.AttributesOffset)));
        return result;
    }

    private static MemoryStream AsStream(ReadOnlyMemory<byte> data) =>
        System.Runtime.InteropServices.MemoryMarshal.TryGetArray(data, out var segment)
            ? new MemoryStream(segment.Array!, segment.Offset, segment.Count, writable: false)
            : new MemoryStream(data.ToArray(), writable: false);
}
