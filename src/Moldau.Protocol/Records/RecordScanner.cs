using System.Buffers;

namespace Moldau.Protocol.Records;

/// <summary>What <see cref="RecordScanner"/> learnt of one record: its fields' sizes, not their bytes.</summary>
/// <param name="Index">Position of the record in its batch, from 0.</param>
/// <param name="TimestampDelta">From the batch's base timestamp.</param>
/// <param name="OffsetDelta">From the batch's base offset.</param>
/// <param name="KeyLength">Bytes of the key, -1 for a null key.</param>
/// <param name="ValueLength">Bytes of the value, -1 for a null value.</param>
/// <param name="HeaderCount">Number of headers.</param>
public readonly record struct ScannedRecord(int Index, long TimestampDelta, int OffsetDelta, int KeyLength, int ValueLength, int HeaderCount);

/// <summary>
/// Walks the records of a batch's records section and checks that each one parses exactly to its
/// declared length (see <see cref="Record"/> for the layout), without keeping keys, values or
/// headers. It reads either a span (an uncompressed batch: no copy, no allocation) or a stream (a
/// decompressing one: a pooled 64 KiB window slides over it, so the decompressed batch is never
/// held whole; <see cref="RecordCompression.OpenDecompressor"/> bounds how much it yields).
/// Malformed bytes throw <see cref="KafkaProtocolException"/>.
/// </summary>
public ref struct RecordScanner
{
    private const int WindowSize = 64 * 1024;

    private readonly Stream? _stream;
    private byte[]? _window;
    private ReadOnlySpan<byte> _data;
    private int _position;
    private long _consumedBefore; // stream bytes slid out of the window
    private bool _streamDone;
    private int _index;

    /// <summary>Scans the records in <paramref name="section"/> (an uncompressed records section).</summary>
    public RecordScanner(ReadOnlySpan<byte> section)
    {
        _data = section;
        _streamDone = true;
    }

    /// <summary>Scans the records <paramref name="decompressed"/> yields; call <see cref="Dispose"/>.</summary>
    public RecordScanner(Stream decompressed)
    {
        _stream = decompressed;
        _window = ArrayPool<byte>.Shared.Rent(WindowSize);
        _data = default;
    }

    /// <summary>Bytes of records read so far (decompressed bytes for a stream).</summary>
    public readonly long Position => _consumedBefore + _position;

    /// <summary>
    /// Reads the next record into <paramref name="record"/>; false when there are no more bytes.
    /// Its offset delta is not checked here (see <see cref="RecordBatchValidator"/>).
    /// </summary>
    public bool MoveNext(out ScannedRecord record)
    {
        record = default;
        if (!Ensure(1))
        {
            return false;
        }

        var length = ReadVarInt();
        if (length < 0)
        {
            throw new KafkaProtocolException($"record {_index} has a negative length {length}");
        }

        var start = Position;
        var end = start + length;
        _ = ReadByte(end); // attributes: unused in v2
        var timestampDelta = ReadVarLong(end);
        var offsetDelta = ReadVarInt(end);
        var keyLength = ReadLength(end, "key");
        Skip(keyLength, end);
        var valueLength = ReadLength(end, "value");
        Skip(valueLength, end);
        var headerCount = ReadVarInt(end);
        if (headerCount < -1 || headerCount > end - Position)
        {
            throw new KafkaProtocolException($"record {_index} declares {headerCount} headers in {end - Position} bytes");
        }

        for (var i = 0; i < headerCount; i++)
        {
            var headerKey = ReadLength(end, "header key");
            if (headerKey < 0)
            {
                throw new KafkaProtocolException($"record {_index} has a null header key");
            }

            Skip(headerKey, end);
            Skip(ReadLength(end, "header value"), end);
        }

        if (Position != end)
        {
            throw new KafkaProtocolException($"record {_index} declares {length} bytes but its fields take {Position - start}");
        }

        record = new ScannedRecord(_index, timestampDelta, offsetDelta, keyLength, valueLength, Math.Max(headerCount, 0));
        _index++;
        return true;
    }

    /// <summary>True when bytes remain after the records read so far.</summary>
    public bool HasMore() => Ensure(1);

    /// <summary>Gives the window back to the pool.</summary>
    public void Dispose()
    {
        if (_window is { } window)
        {
            _window = null;
            _data = default;
            ArrayPool<byte>.Shared.Return(window);
        }
    }

    /// <summary>True when at least <paramref name="count"/> bytes are in the window (refilled from the stream if needed).</summary>
    private bool Ensure(int count)
    {
        if (_data.Length - _position >= count)
        {
            return true;
        }

        if (_streamDone)
        {
            return false;
        }

        // Slide what is left to the front of the window and fill the rest from the stream.
        var window = _window!;
        var kept = _data.Length - _position;
        _data[_position..].CopyTo(window);
        _consumedBefore += _position;
        var filled = kept;
        while (filled < count) // kept < count on entry
        {
            var read = _stream!.Read(window, filled, window.Length - filled);
            if (read == 0)
            {
                _streamDone = true;
                break;
            }

            filled += read;
        }

        _data = window.AsSpan(0, filled);
        _position = 0;
        return filled >= count;
    }

    private byte ReadByte(long end)
    {
        if (Position >= end || !Ensure(1))
        {
            throw Truncated(end);
        }

        return _data[_position++];
    }

    private int ReadVarInt(long end = long.MaxValue)
    {
        uint raw = 0;
        for (var shift = 0; shift < 35; shift += 7)
        {
            var b = ReadByte(end);
            if (shift == 28 && b > 0x0F)
            {
                throw new KafkaProtocolException($"record {_index}: varint overflows 32 bits");
            }

            raw |= (uint)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return (int)(raw >> 1) ^ -(int)(raw & 1);
            }
        }

        throw new KafkaProtocolException($"record {_index}: varint longer than 5 bytes");
    }

    private long ReadVarLong(long end)
    {
        ulong raw = 0;
        for (var shift = 0; shift < 70; shift += 7)
        {
            var b = ReadByte(end);
            if (shift == 63 && b > 0x01)
            {
                throw new KafkaProtocolException($"record {_index}: varlong overflows 64 bits");
            }

            raw |= (ulong)(b & 0x7F) << shift;
            if ((b & 0x80) == 0)
            {
                return (long)(raw >> 1) ^ -(long)(raw & 1);
            }
        }

        throw new KafkaProtocolException($"record {_index}: varlong longer than 10 bytes");
    }

    private int ReadLength(long end, string field)
    {
        var length = ReadVarInt(end);
        if (length < -1 || length > end - Position)
        {
            throw new KafkaProtocolException($"record {_index}: {field} of {length} bytes in {end - Position} left of the record");
        }

        return length;
    }

    private void Skip(int count, long end)
    {
        if (count <= 0)
        {
            return;
        }

        if (count > end - Position)
        {
            throw Truncated(end);
        }

        while (count > 0)
        {
            if (!Ensure(1))
            {
                throw Truncated(end);
            }

            var step = Math.Min(count, _data.Length - _position);
            _position += step;
            count -= step;
        }
    }

    private readonly KafkaProtocolException Truncated(long end) =>
        end == long.MaxValue
            ? new KafkaProtocolException($"record {_index} is cut off at byte {Position} of the records")
            : new KafkaProtocolException($"record {_index} ends at byte {end} but the records end at {Position}");
}
