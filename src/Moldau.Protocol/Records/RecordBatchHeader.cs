using System.Buffers.Binary;

namespace Moldau.Protocol.Records;

/// <summary>The timestamp type of a batch (attributes bit 3).</summary>
public enum TimestampType
{
    /// <summary>The producer's create time.</summary>
    CreateTime = 0,

    /// <summary>The broker's append time: every record of the batch has the batch's max timestamp.</summary>
    LogAppendTime = 1,
}

/// <summary>
/// Named reads of the header of a RecordBatch v2 (magic 2) at the start of a span, allocation
/// free: the one place outside this folder's codecs that knows where a header field sits.
/// </summary>
/// <remarks>
/// <code>
///  offset  size  field
///  0       8     base_offset            \ rewritten by the broker on append;
///  8       4     batch_length            | outside the CRC
///  12      4     partition_leader_epoch /
///  16      1     magic (2)
///  17      4     crc (CRC-32C of bytes 21..end)
///  21      2     attributes: bits 0-2 compression, 3 timestamp type, 4 transactional,
///                5 control, 6 delete horizon
///  23      4     last_offset_delta
///  27      8     base_timestamp
///  35      8     max_timestamp
///  43      8     producer_id
///  51      2     producer_epoch
///  53      4     base_sequence
///  57      4     record_count
///  61      ...   records (compressed as a whole when attributes say so)
/// </code>
/// batch_length counts the bytes after itself, so a batch is batch_length + 12 bytes long. The
/// span may hold only part of a header (the first 12 bytes are enough for the base offset and the
/// length): reading a field past its end throws, as any span index does. <see cref="IsCrcValid"/>
/// needs the whole batch. <see cref="MutableRecordBatchHeader"/> writes the same fields.
/// </remarks>
public readonly ref struct RecordBatchHeader
{
    /// <summary>Bytes before the records.</summary>
    public const int Size = 61;

    /// <summary>Bytes of base_offset and batch_length, not counted by batch_length.</summary>
    public const int LogOverhead = 12;

    internal const int BatchLengthAt = 8;
    internal const int PartitionLeaderEpochAt = 12;
    internal const int MagicAt = 16;
    internal const int CrcAt = 17;
    internal const int AttributesAt = 21;
    internal const int LastOffsetDeltaAt = 23;
    internal const int BaseTimestampAt = 27;
    internal const int MaxTimestampAt = 35;
    internal const int ProducerIdAt = 43;
    internal const int ProducerEpochAt = 51;
    internal const int BaseSequenceAt = 53;
    internal const int RecordCountAt = 57;

    internal const short CompressionMask = 0x07;
    internal const short LogAppendTimeBit = 0x08;
    internal const short TransactionalBit = 0x10;
    internal const short ControlBit = 0x20;
    internal const short DeleteHorizonBit = 0x40;

    private readonly ReadOnlySpan<byte> _bytes;

    /// <summary>Views the header at the start of <paramref name="bytes"/>.</summary>
    public RecordBatchHeader(ReadOnlySpan<byte> bytes) => _bytes = bytes;

    /// <summary>The bytes viewed.</summary>
    public ReadOnlySpan<byte> Bytes => _bytes;

    /// <summary>Offset of the first record (outside the CRC).</summary>
    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(_bytes);

    /// <summary>Bytes after the batch_length field.</summary>
    public int BatchLength => BinaryPrimitives.ReadInt32BigEndian(_bytes[BatchLengthAt..]);

    /// <summary>The whole batch's size in bytes: batch_length + 12 (a long, so a hostile length can't overflow).</summary>
    public long TotalSize => (long)BatchLength + LogOverhead;

    /// <summary>The leader epoch the broker stamped on append (outside the CRC).</summary>
    public int PartitionLeaderEpoch => BinaryPrimitives.ReadInt32BigEndian(_bytes[PartitionLeaderEpochAt..]);

    /// <summary>The format version; 2 for a RecordBatch.</summary>
    public byte Magic => _bytes[MagicAt];

    /// <summary>The stored CRC-32C.</summary>
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(_bytes[CrcAt..]);

    /// <summary>The attribute bits.</summary>
    public short Attributes => BinaryPrimitives.ReadInt16BigEndian(_bytes[AttributesAt..]);

    /// <summary>The codec of the records (attributes bits 0-2).</summary>
    public CompressionType Compression => (CompressionType)(Attributes & CompressionMask);

    /// <summary>The timestamp type (attributes bit 3).</summary>
    public TimestampType TimestampType => (Attributes & LogAppendTimeBit) != 0 ? TimestampType.LogAppendTime : TimestampType.CreateTime;

    /// <summary>True when timestamps are log-append time (else create time).</summary>
    public bool IsLogAppendTime => (Attributes & LogAppendTimeBit) != 0;

    /// <summary>True for a transactional batch (attributes bit 4).</summary>
    public bool IsTransactional => (Attributes & TransactionalBit) != 0;

    /// <summary>True for a control batch: transaction markers, KRaft control records (attributes bit 5).</summary>
    public bool IsControl => (Attributes & ControlBit) != 0;

    /// <summary>True when base_timestamp holds a delete horizon set by compaction (attributes bit 6, KIP-534).</summary>
    public bool HasDeleteHorizon => (Attributes & DeleteHorizonBit) != 0;

    /// <summary>Offset delta of the last record.</summary>
    public int LastOffsetDelta => BinaryPrimitives.ReadInt32BigEndian(_bytes[LastOffsetDeltaAt..]);

    /// <summary>Offset of the last record: base offset + last offset delta.</summary>
    public long LastOffset => BaseOffset + LastOffsetDelta;

    /// <summary>Timestamp of the first record (or the delete horizon, see <see cref="HasDeleteHorizon"/>).</summary>
    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[BaseTimestampAt..]);

    /// <summary>The largest timestamp in the batch.</summary>
    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(_bytes[MaxTimestampAt..]);

    /// <summary>The idempotent or transactional producer's id, -1 if none.</summary>
    public long ProducerId => BinaryPrimitives.ReadInt64BigEndian(_bytes[ProducerIdAt..]);

    /// <summary>The producer's epoch.</summary>
    public short ProducerEpoch => BinaryPrimitives.ReadInt16BigEndian(_bytes[ProducerEpochAt..]);

    /// <summary>Sequence number of the first record, -1 if none.</summary>
    public int BaseSequence => BinaryPrimitives.ReadInt32BigEndian(_bytes[BaseSequenceAt..]);

    /// <summary>Number of records.</summary>
    public int RecordCount => BinaryPrimitives.ReadInt32BigEndian(_bytes[RecordCountAt..]);

    /// <summary>The bytes the CRC covers: from the attributes to the end of the span (the whole batch).</summary>
    public ReadOnlySpan<byte> CrcCovered => _bytes[AttributesAt..];

    /// <summary>The CRC-32C the bytes from the attributes to the end of the span (the whole batch) have now.</summary>
    public uint ComputeCrc() => Crc32C.Compute(_bytes[AttributesAt..]);

    /// <summary>True when the span holds the whole batch and its stored CRC matches it.</summary>
    public bool IsCrcValid() => ComputeCrc() == Crc;

    /// <summary>The total size the batch at the start of <paramref name="bytes"/> declares, or -1 when fewer than 12 bytes.</summary>
    public static long DeclaredSize(ReadOnlySpan<byte> bytes) =>
        bytes.Length < LogOverhead ? -1 : (long)BinaryPrimitives.ReadInt32BigEndian(bytes[BatchLengthAt..]) + LogOverhead;
}

/// <summary>
/// Named reads and writes of the header of a RecordBatch v2 at the start of a writable span (the
/// layout is drawn on <see cref="RecordBatchHeader"/>). Every field except base offset, batch
/// length and partition leader epoch is covered by the CRC: after changing one, call
/// <see cref="UpdateCrc"/> over the whole batch.
/// </summary>
public readonly ref struct MutableRecordBatchHeader
{
    private readonly Span<byte> _bytes;

    /// <summary>Views the header at the start of <paramref name="bytes"/>.</summary>
    public MutableRecordBatchHeader(Span<byte> bytes) => _bytes = bytes;

    /// <summary>The same bytes, for reading.</summary>
    public RecordBatchHeader ReadOnly => new(_bytes);

    /// <summary>Offset of the first record (outside the CRC).</summary>
    public long BaseOffset
    {
        get => ReadOnly.BaseOffset;
        set => BinaryPrimitives.WriteInt64BigEndian(_bytes, value);
    }

    /// <summary>Bytes after the batch_length field (outside the CRC).</summary>
    public int BatchLength
    {
        get => ReadOnly.BatchLength;
        set => BinaryPrimitives.WriteInt32BigEndian(_bytes[RecordBatchHeader.BatchLengthAt..], value);
    }

    /// <summary>The leader epoch the broker stamps on append (outside the CRC).</summary>
    public int PartitionLeaderEpoch
    {
        get => ReadOnly.PartitionLeaderEpoch;
        set => BinaryPrimitives.WriteInt32BigEndian(_bytes[RecordBatchHeader.PartitionLeaderEpochAt..], value);
    }

    /// <summary>The format version; 2 for a RecordBatch.</summary>
    public byte Magic
    {
        get => ReadOnly.Magic;
        set => _bytes[RecordBatchHeader.MagicAt] = value;
    }

    /// <summary>The stored CRC-32C.</summary>
    public uint Crc
    {
        get => ReadOnly.Crc;
        set => BinaryPrimitives.WriteUInt32BigEndian(_bytes[RecordBatchHeader.CrcAt..], value);
    }

    /// <summary>The attribute bits.</summary>
    public short Attributes
    {
        get => ReadOnly.Attributes;
        set => BinaryPrimitives.WriteInt16BigEndian(_bytes[RecordBatchHeader.AttributesAt..], value);
    }

    /// <summary>The codec of the records (attributes bits 0-2); the records themselves are not touched.</summary>
    public CompressionType Compression
    {
        get => ReadOnly.Compression;
        set => Attributes = (short)((Attributes & ~RecordBatchHeader.CompressionMask) | ((int)value & RecordBatchHeader.CompressionMask));
    }

    /// <summary>The timestamp type (attributes bit 3).</summary>
    public TimestampType TimestampType
    {
        get => ReadOnly.TimestampType;
        set => SetBit(RecordBatchHeader.LogAppendTimeBit, value == TimestampType.LogAppendTime);
    }

    /// <summary>A transactional batch (attributes bit 4).</summary>
    public bool IsTransactional
    {
        get => ReadOnly.IsTransactional;
        set => SetBit(RecordBatchHeader.TransactionalBit, value);
    }

    /// <summary>A control batch (attributes bit 5).</summary>
    public bool IsControl
    {
        get => ReadOnly.IsControl;
        set => SetBit(RecordBatchHeader.ControlBit, value);
    }

    /// <summary>base_timestamp holds a delete horizon (attributes bit 6, KIP-534).</summary>
    public bool HasDeleteHorizon
    {
        get => ReadOnly.HasDeleteHorizon;
        set => SetBit(RecordBatchHeader.DeleteHorizonBit, value);
    }

    /// <summary>Offset delta of the last record.</summary>
    public int LastOffsetDelta
    {
        get => ReadOnly.LastOffsetDelta;
        set => BinaryPrimitives.WriteInt32BigEndian(_bytes[RecordBatchHeader.LastOffsetDeltaAt..], value);
    }

    /// <summary>Timestamp of the first record (or the delete horizon).</summary>
    public long BaseTimestamp
    {
        get => ReadOnly.BaseTimestamp;
        set => BinaryPrimitives.WriteInt64BigEndian(_bytes[RecordBatchHeader.BaseTimestampAt..], value);
    }

    /// <summary>The largest timestamp in the batch.</summary>
    public long MaxTimestamp
    {
        get => ReadOnly.MaxTimestamp;
        set => BinaryPrimitives.WriteInt64BigEndian(_bytes[RecordBatchHeader.MaxTimestampAt..], value);
    }

    /// <summary>The idempotent or transactional producer's id, -1 if none.</summary>
    public long ProducerId
    {
        get => ReadOnly.ProducerId;
        set => BinaryPrimitives.WriteInt64BigEndian(_bytes[RecordBatchHeader.ProducerIdAt..], value);
    }

    /// <summary>The producer's epoch.</summary>
    public short ProducerEpoch
    {
        get => ReadOnly.ProducerEpoch;
        set => BinaryPrimitives.WriteInt16BigEndian(_bytes[RecordBatchHeader.ProducerEpochAt..], value);
    }

    /// <summary>Sequence number of the first record, -1 if none.</summary>
    public int BaseSequence
    {
        get => ReadOnly.BaseSequence;
        set => BinaryPrimitives.WriteInt32BigEndian(_bytes[RecordBatchHeader.BaseSequenceAt..], value);
    }

    /// <summary>Number of records.</summary>
    public int RecordCount
    {
        get => ReadOnly.RecordCount;
        set => BinaryPrimitives.WriteInt32BigEndian(_bytes[RecordBatchHeader.RecordCountAt..], value);
    }

    /// <summary>Stores the CRC-32C of the bytes from the attributes to the end of the span, which must hold the whole batch.</summary>
    public void UpdateCrc() => Crc = ReadOnly.ComputeCrc();

    private void SetBit(short bit, bool on) => Attributes = (short)(on ? Attributes | bit : Attributes & ~bit);
}
