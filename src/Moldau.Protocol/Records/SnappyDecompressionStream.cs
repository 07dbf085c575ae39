using System.Buffers;
using System.Buffers.Binary;

namespace Moldau.Protocol.Records;

/// <summary>
/// Reads the snappy records section of a batch one block at a time, so at most one block's
/// uncompressed bytes are held (in a pooled buffer), and a block whose header claims more than
/// <c>maxBlockBytes</c> is refused before anything is allocated.
/// </summary>
/// <remarks>
/// <code>
/// xerial framing (Kafka's Java client):
///   magic 0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0   8 bytes
///   version int32, compatible int32          8 bytes
///   blocks: length int32 (big-endian), raw snappy block of that length, repeated
/// otherwise the whole section is one raw snappy block (librdkafka, sarama), whose first
/// bytes are a varint of its uncompressed length.
/// </code>
/// </remarks>
internal sealed class SnappyDecompressionStream(ReadOnlyMemory<byte> data, long maxBlockBytes) : Stream
{
    private static ReadOnlySpan<byte> XerialMagic => [0x82, (byte)'S', (byte)'N', (byte)'A', (byte)'P', (byte)'P', (byte)'Y', 0];

    private ReadOnlyMemory<byte> _rest = data;
    private bool _started;
    private bool _xerial;
    private byte[]? _block;
    private int _blockLength;
    private int _blockPosition;

    /// <summary>True when <paramref name="data"/> starts with the xerial header.</summary>
    public static bool IsXerial(ReadOnlySpan<byte> data) => data.Length >= 16 && data[..8].SequenceEqual(XerialMagic);

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        while (_blockPosition == _blockLength)
        {
            if (!NextBlock())
            {
                return 0;
            }
        }

        var n = Math.Min(buffer.Length, _blockLength - _blockPosition);
        _block.AsSpan(_blockPosition, n).CopyTo(buffer);
        _blockPosition += n;
        return n;
    }

    private bool NextBlock()
    {
        if (!_started)
        {
            _started = true;
            _xerial = IsXerial(_rest.Span);
            if (_xerial)
            {
                _rest = _rest[16..];
            }
            else
            {
                var whole = _rest;
                _rest = ReadOnlyMemory<byte>.Empty;
                Decompress(whole.Span);
                return true;
            }
        }

        if (!_xerial || _rest.Length == 0)
        {
            return false;
        }

        if (_rest.Length < 4)
        {
            throw new KafkaProtocolException("truncated xerial snappy block header");
        }

        var length = BinaryPrimitives.ReadInt32BigEndian(_rest.Span);
        if (length < 0 || length > _rest.Length - 4)
        {
            throw new KafkaProtocolException($"xerial snappy block of {length} bytes in {_rest.Length - 4}");
        }

        var block = _rest.Slice(4, length);
        _rest = _rest[(4 + length)..];
        Decompress(block.Span);
        return true;
    }

    private const int SnappyMaxExpansion = 22;

    private void Decompress(ReadOnlySpan<byte> compressed)
    {
        var length = Snappier.Snappy.GetUncompressedLength(compressed);
        if (length < 0)
        {
            throw new KafkaProtocolException($"snappy block claims {length} bytes");
        }

        // No snappy element yields more than 64 bytes for the 3 it takes (a copy with a 2-byte
        // offset), so an honest block inflates to at most 22 times its size; the decoder allocates
        // the declared length before reading, so a few bytes must not ask for megabytes.
        if (length > (long)SnappyMaxExpansion * compressed.Length)
        {
            throw new KafkaProtocolException($"snappy block of {compressed.Length} bytes declares {length} uncompressed");
        }

        if (length > maxBlockBytes)
        {
            throw new RecordsTooLargeException($"snappy block inflates to {length} bytes, more than {maxBlockBytes}");
        }

        if (_block is null || _block.Length < length)
        {
            ReturnBlock();
            _block = ArrayPool<byte>.Shared.Rent(Math.Max(length, 1));
        }

        _blockLength = Snappier.Snappy.Decompress(compressed, _block.AsSpan(0, length));
        _blockPosition = 0;
    }

    private void ReturnBlock()
    {
        if (_block is { } block)
        {
            _block = null;
            ArrayPool<byte>.Shared.Return(block);
        }
    }

    protected override void Dispose(bool disposing)
    {
        ReturnBlock();
        base.Dispose(disposing);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
