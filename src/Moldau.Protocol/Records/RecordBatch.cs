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
/// A view over the bytes of one whole RecordBatch v2 (magic 2), the unit Kafka stores and serves.
/// The header fields are read through <see cref="RecordBatchHeader"/>, where the layout is drawn.
/// </summary>
public readonly struct RecordBatch
{
    /// <summary>Bytes before the records.</summary>
    public const int HeaderSize = RecordBatchHeader.Size;

    /// <summary>Bytes of base_offset and batch_length, not counted by batch_length.</summary>
    public const int LogOverhead = RecordBatchHeader.LogOverhead;

    /// <summary>Offset of the magic byte.</summary>
    public const int MagicOffset = RecordBatchHeader.MagicAt;

    /// <summary>Offset of the CRC.</summary>
    public const int CrcOffset = RecordBatchHeader.CrcAt;

    /// <summary>Offset of the attributes, where the CRC's coverage starts.</summary>
    public const int AttributesOffset = RecordBatchHeader.AttributesAt;

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

    /// <summary>The header's fields.</summary>
    public RecordBatchHeader Header => new(_bytes.Span);

    /// <summary>The batch's bytes.</summary>
    public ReadOnlyMemory<byte> Bytes => _bytes;

    /// <summary>Offset of the first record.</summary>
    public long BaseOffset => Header.BaseOffset;

    /// <summary>Bytes after the batch_length field.</summary>
    public int BatchLength => Header.BatchLength;

    /// <summary>The whole batch's size in bytes.</summary>
    public int TotalSize => BatchLength + LogOverhead;

    /// <summary>The leader epoch the broker stamped on append.</summary>
    public int PartitionLeaderEpoch => Header.PartitionLeaderEpoch;

    /// <summary>The format version; 2 here.</summary>
    public byte Magic => Header.Magic;

    /// <summary>The stored CRC-32C.</summary>
    public uint Crc => Header.Crc;

    /// <summary>The attribute bits.</summary>
    public short Attributes => Header.Attributes;

    /// <summary>The codec of the records.</summary>
    public CompressionType Compression => Header.Compression;

    /// <summary>True when timestamps are log-append time (else create time).</summary>
    public bool IsLogAppendTime => Header.IsLogAppendTime;

    /// <summary>True for a transactional batch.</summary>
    public bool IsTransactional => Header.IsTransactional;

    /// <summary>True for a control batch (transaction markers, KRaft control records).</summary>
    public bool IsControl => Header.IsControl;

    /// <summary>True when base_timestamp holds a delete horizon (compaction).</summary>
    public bool HasDeleteHorizon => Header.HasDeleteHorizon;

    /// <summary>Offset delta of the last record.</summary>
    public int LastOffsetDelta => Header.LastOffsetDelta;

    /// <summary>Offset of the last record.</summary>
    public long LastOffset => Header.LastOffset;

    /// <summary>Timestamp of the first record.</summary>
    public long BaseTimestamp => Header.BaseTimestamp;

    /// <summary>The largest timestamp in the batch.</summary>
    public long MaxTimestamp => Header.MaxTimestamp;

    /// <summary>The idempotent or transactional producer's id, -1 if none.</summary>
    public long ProducerId => Header.ProducerId;

    /// <summary>The producer's epoch.</summary>
    public short ProducerEpoch => Header.ProducerEpoch;

    /// <summary>Sequence number of the first record.</summary>
    public int BaseSequence => Header.BaseSequence;

    /// <summary>Number of records.</summary>
    public int RecordCount => Header.RecordCount;

    /// <summary>The records section (compressed when <see cref="Compression"/> says so).</summary>
    public ReadOnlyMemory<byte> RecordsSection => _bytes[HeaderSize..];

    /// <summary>True when the stored CRC matches the bytes from attributes to the end.</summary>
    public bool IsCrcValid() => Header.IsCrcValid();

    /// <summary>The records of the batch, decompressed first when the batch is compressed.</summary>
    public RecordEnumerator GetRecords() =>
        new(Compression == CompressionType.None ? RecordsSection : RecordCompression.Decompress(Compression, RecordsSection), RecordCount);

    /// <summary>Writes the base offset into a batch's bytes (not covered by the CRC).</summary>
    public static void SetBaseOffset(Span<byte> batch, long baseOffset) => new MutableRecordBatchHeader(batch).BaseOffset = baseOffset;

    /// <summary>Writes the partition leader epoch into a batch's bytes (not covered by the CRC).</summary>
    public static void SetPartitionLeaderEpoch(Span<byte> batch, int epoch) => new MutableRecordBatchHeader(batch).PartitionLeaderEpoch = epoch;

    /// <summary>Reads the total size a batch declares at the start of <paramref name="bytes"/>, or -1 when fewer than 12 bytes.</summary>
    public static long DeclaredSize(ReadOnlySpan<byte> bytes) => RecordBatchHeader.DeclaredSize(bytes);
}
