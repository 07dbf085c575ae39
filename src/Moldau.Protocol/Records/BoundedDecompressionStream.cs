using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Moldau.Protocol.Records;

/// <summary>
/// Wraps a codec's decompressing stream: counts what it yields and throws
/// <see cref="RecordsTooLargeException"/> once that passes the limit, and turns whatever the codec
/// throws on bad input into <see cref="KafkaProtocolException"/>, so callers catch one type.
/// </summary>
internal sealed class BoundedDecompressionStream(Stream inner, CompressionType codec, long maxBytes) : Stream
{
    private long _produced;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => _produced; set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        int read;
        try
        {
            read = inner.Read(buffer);
        }
        catch (ZstdException e) when (e.Code == ZSTD_ErrorCode.ZSTD_error_frameParameter_windowTooLarge)
        {
            throw new RecordsTooLargeException($"zstd frame needs a window larger than 2^{RecordCompression.ZstdWindowLogMax} bytes");
        }
        catch (Exception e) when (e is not KafkaProtocolException && IsCodecError(e))
        {
            throw new KafkaProtocolException($"{codec} data does not decompress: {e.Message}");
        }

        _produced += read;
        if (_produced > maxBytes)
        {
            throw new RecordsTooLargeException($"{codec} records inflate to more than {maxBytes} bytes");
        }

        return read;
    }

    /// <summary>
    /// What the codecs throw on input they cannot read: corrupt data, truncation, overflowing
    /// lengths (Snappier), LZ4 frame features K4os does not implement (a dictionary id).
    /// </summary>
    internal static bool IsCodecError(Exception e) =>
        e is InvalidDataException or IOException or InvalidOperationException or ArgumentException
            or ZstdException or IndexOutOfRangeException or OverflowException or NotImplementedException
            or NotSupportedException;

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
