using Microsoft.Win32.SafeHandles;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Cleaning;

/// <summary>
/// Walks the batches of a closed segment in order through a window of the file, so a segment is
/// never read whole into memory. A batch handed out stays valid until the next call.
/// </summary>
internal sealed class SegmentBatchReader(SafeFileHandle handle, long size)
{
    private byte[] _window = new byte[1 << 20];
    private long _windowStart;
    private int _windowLength;
    private long _position;

    /// <summary>The next whole batch, or false at the end of the segment.</summary>
    public bool TryNext(out ReadOnlyMemory<byte> batch)
    {
        batch = default;
        if (_position + RecordBatch.LogOverhead > size)
        {
            return false;
        }

        Ensure(RecordBatch.LogOverhead);
        var declared = RecordBatch.DeclaredSize(_window.AsSpan((int)(_position - _windowStart)));
        if (declared < RecordBatch.HeaderSize || _position + declared > size)
        {
            // A closed segment was checked batch by batch when it was written or recovered.
            throw new IOException($"segment holds a batch of {declared} bytes at position {_position} of {size}");
        }

        Ensure((int)declared);
        batch = _window.AsMemory((int)(_position - _windowStart), (int)declared);
        _position += declared;
        return true;
    }

    private void Ensure(int length)
    {
        if (_position >= _windowStart && _position + length <= _windowStart + _windowLength)
        {
            return;
        }

        if (_window.Length < length)
        {
            _window = new byte[length];
        }

        var want = (int)Math.Min(_window.Length, size - _position);
        var read = 0;
        while (read < want)
        {
            var n = RandomAccess.Read(handle, _window.AsSpan(read, want - read), _position + read);
            if (n <= 0)
            {
                throw new IOException($"segment ended at {_position + read}, expected {size} bytes");
            }

            read += n;
        }

        _windowStart = _position;
        _windowLength = read;
    }
}
