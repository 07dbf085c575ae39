using System.Buffers.Binary;

namespace Moldau.Protocol.Records;

/// <summary>Checks the records a producer sends, before anything is stored.</summary>
public static class RecordBatchValidator
{
    /// <summary>
    /// A Produce (v3+) partition's records must be exactly one whole RecordBatch v2 with a valid
    /// CRC. A torn or corrupt batch is CORRUPT_MESSAGE (2); the old message formats (magic 0
    /// or 1), no batch, or more than one batch are INVALID_RECORD (87).
    /// </summary>
    public static ErrorCode ValidateProduce(ReadOnlySpan<byte> records)
    {
        if (records.Length < RecordBatch.LogOverhead + 5)
        {
            return records.Length == 0 ? ErrorCode.InvalidRecord : ErrorCode.CorruptMessage;
        }

        var magic = records[RecordBatch.MagicOffset];
        if (magic is 0 or 1)
        {
            return ErrorCode.InvalidRecord;
        }

        if (magic != 2)
        {
            return ErrorCode.CorruptMessage;
        }

        var declared = RecordBatch.DeclaredSize(records);
        if (declared < RecordBatch.HeaderSize || declared > records.Length)
        {
            return ErrorCode.CorruptMessage;
        }

        if (declared < records.Length)
        {
            return ErrorCode.InvalidRecord; // a second batch (or trailing bytes) after the first
        }

        var crc = BinaryPrimitives.ReadUInt32BigEndian(records[RecordBatch.CrcOffset..]);
        if (Crc32C.Compute(records[RecordBatch.AttributesOffset..]) != crc)
        {
            return ErrorCode.CorruptMessage;
        }

        var count = BinaryPrimitives.ReadInt32BigEndian(records[57..]);
        var lastOffsetDelta = BinaryPrimitives.ReadInt32BigEndian(records[23..]);
        if (count <= 0 || lastOffsetDelta < 0)
        {
            return ErrorCode.InvalidRecord;
        }

        return ErrorCode.None;
    }
}

/// <summary>
/// Walks the whole batches in a run of bytes (a segment, a fetch response), stopping at the first
/// incomplete or invalid one; <see cref="ValidEnd"/> then says where the whole batches end.
/// </summary>
public ref struct RecordBatchEnumerator
{
    private readonly ReadOnlySpan<byte> _bytes;
    private readonly bool _checkCrc;
    private int _next;

    /// <summary>Walks <paramref name="bytes"/>; with <paramref name="checkCrc"/> a batch with a bad CRC ends the walk.</summary>
    public RecordBatchEnumerator(ReadOnlySpan<byte> bytes, bool checkCrc)
    {
        _bytes = bytes;
        _checkCrc = checkCrc;
        _next = 0;
        CurrentStart = 0;
        CurrentLength = 0;
    }

    /// <summary>Start of the current batch.</summary>
    public int CurrentStart { get; private set; }

    /// <summary>Length of the current batch.</summary>
    public int CurrentLength { get; private set; }

    /// <summary>The current batch's bytes.</summary>
    public readonly ReadOnlySpan<byte> Current => _bytes.Slice(CurrentStart, CurrentLength);

    /// <summary>End of the last whole, valid batch seen.</summary>
    public readonly int ValidEnd => _next;

    /// <summary>Moves to the next whole batch; false at the end or at a torn or invalid batch.</summary>
    public bool MoveNext()
    {
        var rest = _bytes[_next..];
        var declared = RecordBatch.DeclaredSize(rest);
        if (declared < RecordBatch.HeaderSize || declared > rest.Length || rest[RecordBatch.MagicOffset] != 2)
        {
            return false;
        }

        var batch = rest[..(int)declared];
        if (_checkCrc && Crc32C.Compute(batch[RecordBatch.AttributesOffset..]) != BinaryPrimitives.ReadUInt32BigEndian(batch[RecordBatch.CrcOffset..]))
        {
            return false;
        }

        CurrentStart = _next;
        CurrentLength = (int)declared;
        _next += (int)declared;
        return true;
    }
}
