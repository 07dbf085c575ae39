using System.Buffers.Binary;

namespace Moldau.Protocol.Records;

/// <summary>The compression codec in a batch's attributes (bits 0-2).</summary>
public enum CompressionType
{
    /// <summary>Uncompressed.</summary>
    None = 0,

    /// <summary>gzip.</summary>
    Gzip = 1,

    /// <summary>Snappy (xerial framing).</summary>
    Snappy = 2,

    /// <summary>LZ4 frame.</summary>
    Lz4 = 3,

    /// <summary>Zstandard.</summary>
    Zstd = 4,
}

/// <summary>
/// A view over the bytes of one RecordBatch v2 (magic 2), the unit Kafka stores and serves.
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
/// batch_length counts the bytes after itself, so a batch is batch_length + 12 bytes long.
/// </remarks>
public readonly struct RecordBatch
{
    /// <summary>Bytes before the records.</summary>
    public const int HeaderSize = 61;

    /// <summary>Bytes of base_offset and batch_length, not counted by batch_length.</summary>
    public const int LogOverhead = 12;

    /// <summary>Offset of the magic byte.</summary>
    public const int MagicOffset = 16;

    /// <summary>Offset of the CRC.</summary>
    public const int CrcOffset = 17;

    /// <summary>Offset of the attributes, where the CRC's coverage starts.</summary>
    public const int AttributesOffset = 21;

    private readonly ReadOnlyMemory<byte> _bytes;

    /// <summary>Views <paramref name="bytes"/>, which must hold exactly one whole batch.</summary>
    public RecordBatch(ReadOnlyMemory<byte> bytes)
    {
        if (bytes.Length < HeaderSize)
        {
            throw new KafkaProtocolException($"record batch of {bytes.Length} bytes is shorter than its header");
        }

        _bytes = bytes;
    }

    private ReadOnlySpan<byte> S => _bytes.Span;

    /// <summary>The batch's bytes.</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    /// <summary>Offset of the first record.</summary>
    public long BaseOffset => BinaryPrimitives.ReadInt64BigEndian(S);

    /// <summary>Bytes after the batch_length field.</summary>
    public int BatchLength => BinaryPrimitives.ReadInt32BigEndian(S[8..]);

    /// <summary>The whole batch's size in bytes.</summary>
    public int TotalSize => BatchLength + LogOverhead;

    /// <summary>The leader epoch the broker stamped on append.</summary>
    public int PartitionLeaderEpoch => BinaryPrimitives.ReadInt32BigEndian(S[12..]);

    /// <summary>The format version; 2 here.</summary>
    public byte Magic => S[MagicOffset];

    /// <summary>The stored CRC-32C.</summary>
    public uint Crc => BinaryPrimitives.ReadUInt32BigEndian(S[CrcOffset..]);

    /// <summary>The attribute bits.</summary>
    public short Attributes => BinaryPrimitives.ReadInt16BigEndian(S[AttributesOffset..]);

    /// <summary>The codec of the records.</summary>
    public CompressionType Compression => (CompressionType)(Attributes & 0x07);

    /// <summary>True when timestamps are log-append time (else create time).</summary>
    public bool IsLogAppendTime => (Attributes & 0x08) != 0;

    /// <summary>True for a transactional batch.</summary>
    public bool IsTransactional => (Attributes & 0x10) != 0;

    /// <summary>True for a control batch (transaction markers, KRaft control records).</summary>
    public bool IsControl => (Attributes & 0x20) != 0;

    /// <summary>True when base_timestamp holds a delete horizon (compaction).</summary>
    public bool HasDeleteHorizon => (Attributes & 0x40) != 0;

    /// <summary>Offset delta of the last record.</summary>
    public int LastOffsetDelta => BinaryPrimitives.ReadInt32BigEndian(S[23..]);

    /// <summary>Offset of the last record.</summary>
    public long LastOffset => BaseOffset + LastOffsetDelta;

    /// <summary>Timestamp of the first record.</summary>
    public long BaseTimestamp => BinaryPrimitives.ReadInt64BigEndian(S[27..]);

    /// <summary>The largest timestamp in the batch.</summary>
    public long MaxTimestamp => BinaryPrimitives.ReadInt64BigEndian(S[35..]);

    /// <summary>The idempotent or transactional producer's id, -1 if none.</summary>
    public long ProducerId => BinaryPrimitives.ReadInt64BigEndian(S[43..]);

    /// <summary>The producer's epoch.</summary>
    public short ProducerEpoch => BinaryPrimitives.ReadInt16BigEndian(S[51..]);

    /// <summary>Sequence number of the first record.</summary>
    public int BaseSequence => BinaryPrimitives.ReadInt32BigEndian(S[53..]);

    /// <summary>Number of records.</summary>
    public int RecordCount => BinaryPrimitives.ReadInt32BigEndian(S[57..]);

    /// <summary>The records section (compressed when <see cref="Compression"/> says so).</summary>
    public ReadOnlyMemory<byte> RecordsSection => _bytes[HeaderSize..];

    /// <summary>True when the stored CRC matches the bytes from attributes to the end.</summary>
    public bool IsCrcValid() => Crc32C.Compute(S[AttributesOffset..]) == Crc;

    /// <summary>The records of the batch, decompressed first when the batch is compressed.</summary>
    public RecordEnumerator GetRecords() =>
        new(Compression == CompressionType.None ? RecordsSection : RecordCompression.Decompress(Compression, RecordsSection), RecordCount);

    /// <summary>Writes the base offset into a batch's bytes (not covered by the CRC).</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) => BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);

    /// <summary>Writes the partition leader epoch into a batch's bytes (not covered by the CRC).</summary>
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int epoch) => BinaryPrimitives.WriteInt32BigEndian(batch[12..], epoch);

    /// <summary>Reads the total size a batch declares at the start of <paramref name="bytes"/>, or -1 when fewer than 12 bytes.</summary>
    public static long DeclaredSize(ReadOnlySpan<byte> bytes) =>
        bytes.Length < LogOverhead ? -1 : (long)BinaryPrimitives.ReadInt32BigEndian(bytes[8..]) + LogOverhead;
}
