
namespace Moldau.Protocol.Records;

/// <summary>One record of a batch refused on its own (KIP-467): its index in the batch and why.</summary>
public readonly record struct RecordError(int BatchIndex, string Message);

/// <summary>
/// The outcome of <see cref="RecordBatchValidator.Validate"/>: <see cref="ErrorCode.None"/>, or an
/// error with Kafka's message and, when particular records are to blame, which ones.
/// </summary>
public readonly record struct BatchValidation(ErrorCode Error, string? Message, IReadOnlyList<RecordError>? RecordErrors)
{
    /// <summary>A batch that may be appended.</summary>
    public static BatchValidation Valid => default;
}

/// <summary>What the partition a batch goes to demands of its records.</summary>
/// <param name="Topic">The topic's name, for messages.</param>
/// <param name="Partition">The partition's index, for messages.</param>
/// <param name="RequireKeys">True for a compacted topic: a null key is refused per record.</param>
/// <param name="MaxDecompressedBytes">The most a compressed batch may inflate to.</param>
/// <param name="NowMs">The broker's clock, for the timestamp checks.</param>
/// <param name="TimestampBeforeMaxMs">For a CreateTime topic, how far a record's timestamp may lie before <paramref name="NowMs"/> (<c>message.timestamp.before.max.ms</c>).</param>
/// <param name="TimestampAfterMaxMs">For a CreateTime topic, how far it may lie after (<c>message.timestamp.after.max.ms</c>).</param>
/// <param name="LogAppendTimeTopic">True when the topic's <c>message.timestamp.type</c> is LogAppendTime.</param>
public readonly record struct RecordChecks(
    string Topic,
    int Partition,
    bool RequireKeys,
    long MaxDecompressedBytes = RecordCompression.MaxDecompressedBytes,
    long NowMs = 0,
    long TimestampBeforeMaxMs = long.MaxValue,
    long TimestampAfterMaxMs = long.MaxValue,
    bool LogAppendTimeTopic = false);

/// <summary>Checks the records a producer sends, before anything is stored.</summary>
public static class RecordBatchValidator
{
    /// <summary>
    /// Checks the batch header only (see <see cref="Validate"/> for the whole check): a Produce
    /// (v3+) partition's records must be exactly one whole RecordBatch v2 with a valid CRC. A torn
    /// or corrupt batch is CORRUPT_MESSAGE (2); the old message formats (magic 0 or 1), no batch,
    /// more than one batch, a count that disagrees with last_offset_delta, an unknown codec, a
    /// control batch or a producer id without a sequence are INVALID_RECORD (87).
    /// </summary>
    public static ErrorCode ValidateProduce(ReadOnlySpan<byte> records) => CheckHeader(records, out _);

    /// <summary>
    /// Checks a batch as Kafka's LogValidator does before anything is written: the header (see
    /// <see cref="ValidateProduce"/>), then every record, decompressed as a stream when the batch
    /// is compressed: each parses exactly to its declared length, their offset deltas are 0..n-1,
    /// exactly <c>record_count</c> of them fill the records section. Malformed records and
    /// payloads that do not decompress are INVALID_RECORD for the whole batch; a payload that
    /// inflates past <see cref="RecordChecks.MaxDecompressedBytes"/> is MESSAGE_TOO_LARGE; a
    /// record refused on its own (a null key on a compacted topic) is INVALID_RECORD with its
    /// index in <see cref="BatchValidation.RecordErrors"/>, INVALID_TIMESTAMP when any is refused
    /// for its timestamp (out of range, or a LogAppendTime the producer may not claim). Allocates nothing for a valid
    /// uncompressed batch.
    /// </summary>
    public static BatchValidation Validate(ReadOnlyMemory<byte> records, in RecordChecks checks)
    {
        var header = CheckHeader(records.Span, out var reason);
        if (header != ErrorCode.None)
        {
            return new BatchValidation(header, reason is null ? null : $"{reason} in topic partition {checks.Topic}-{checks.Partition}", null);
        }

        var batch = new RecordBatch(records);
        var errors = new RecordErrors(batch.BaseTimestamp, batch.IsLogAppendTime ? batch.MaxTimestamp : null);
        try
        {
            if (batch.Compression == CompressionType.None)
            {
                var scanner = new RecordScanner(batch.RecordsSection.Span);
                Walk(ref scanner, batch.RecordCount, checks, ref errors);
            }
            else
            {
                using var stream = RecordCompression.OpenDecompressor(batch.Compression, batch.RecordsSection, checks.MaxDecompressedBytes);
                var scanner = new RecordScanner(stream);
                try
                {
                    Walk(ref scanner, batch.RecordCount, checks, ref errors);
                }
                finally
                {
                    scanner.Dispose();
                }
            }
        }
        catch (RecordsTooLargeException e)
        {
            return new BatchValidation(ErrorCode.MessageTooLarge, $"{e.Message} in topic partition {checks.Topic}-{checks.Partition}", null);
        }
        catch (KafkaProtocolException e)
        {
            return new BatchValidation(ErrorCode.InvalidRecord, $"{e.Message} in topic partition {checks.Topic}-{checks.Partition}", null);
        }

        if (errors.List is { } list)
        {
            // Kafka's wording (LogValidator.processRecordErrors), which clients show as is: one
            // bad timestamp makes the whole answer INVALID_TIMESTAMP.
            if (errors.AnyTimestamp)
            {
                return new BatchValidation(ErrorCode.InvalidTimestamp, "One or more records have been rejected due to invalid timestamp", list);
            }

            var shown = string.Join(", ", list.Take(3).Select(e => $"RecordError(batchIndex={e.BatchIndex}, message='{e.Message}')"));
            return new BatchValidation(
                ErrorCode.InvalidRecord,
                $"One or more records have been rejected due to {list.Count} record errors in total, and only showing the first three errors at most: [{shown}]",
                list);
        }

        return BatchValidation.Valid;
    }

    private static void Walk(ref RecordScanner scanner, int count, in RecordChecks checks, ref RecordErrors errors)
    {
        var checkTimestamps = checks.TimestampBeforeMaxMs != long.MaxValue || checks.TimestampAfterMaxMs != long.MaxValue;
        for (var i = 0; i < count; i++)
        {
            if (!scanner.MoveNext(out var record))
            {
                throw new KafkaProtocolException($"the batch declares {count} records but holds {i}");
            }

            if (record.OffsetDelta != i)
            {
                throw new KafkaProtocolException($"record {i} has offset delta {record.OffsetDelta}");
            }

            // One error per record, the key's first (LogValidator.validateRecord).
            if (checks.RequireKeys && record.KeyLength < 0)
            {
                errors.Add(new RecordError(i, $"Compacted topic cannot accept message without key in topic partition {checks.Topic}-{checks.Partition}."));
            }
            else
            {
                // A batch stamped LogAppendTime gives each record its max timestamp, as Kafka reads it.
                var timestamp = errors.LogAppendTime ?? errors.BaseTimestamp + record.TimestampDelta;
                if (!checks.LogAppendTimeTopic && timestamp != -1)
                {
                    var behind = checks.NowMs - timestamp;
                    if (checkTimestamps && (behind > checks.TimestampBeforeMaxMs || -behind > checks.TimestampAfterMaxMs))
                    {
                        errors.AnyTimestamp = true;
                        errors.Add(new RecordError(i, $"Timestamp {timestamp} of message with offset {i} is out of range. The timestamp should be within [{checks.NowMs - checks.TimestampBeforeMaxMs}, {checks.NowMs + checks.TimestampAfterMaxMs}]"));
                    }
                }
                else if (errors.LogAppendTime is not null)
                {
                    // Only the broker stamps LogAppendTime (LogValidator.validateTimestamp).
                    errors.AnyTimestamp = true;
                    errors.Add(new RecordError(i, $"Invalid timestamp type in message DefaultRecord(offset={i}, timestamp={timestamp}, key={Math.Max(record.KeyLength, 0)} bytes, value={Math.Max(record.ValueLength, 0)} bytes). Producer should not set timestamp type to LogAppendTime."));
                }
            }
        }

        if (scanner.HasMore())
        {
            throw new KafkaProtocolException($"bytes follow the {count} records the batch declares");
        }
    }

    /// <summary>The records refused on their own, gathered as the walk goes (nothing allocated until the first).</summary>
    private struct RecordErrors(long baseTimestamp, long? logAppendTime)
    {
        public readonly long BaseTimestamp = baseTimestamp;

        /// <summary>The batch's max timestamp when the batch claims LogAppendTime, else null.</summary>
        public readonly long? LogAppendTime = logAppendTime;
        public List<RecordError>? List;
        public bool AnyTimestamp;

        public void Add(RecordError error) => (List ??= []).Add(error);
    }

    private static ErrorCode CheckHeader(ReadOnlySpan<byte> records, out string? reason)
    {
        reason = null;
        if (records.Length < RecordBatch.LogOverhead + 5)
        {
            return records.Length == 0 ? ErrorCode.InvalidRecord : ErrorCode.CorruptMessage;
        }

        var header = new RecordBatchHeader(records);
        var magic = header.Magic;
        if (magic is 0 or 1)
        {
            reason = $"magic {magic} (the message formats before 0.11) is not accepted";
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
            reason = "Compressed outer record has more than one batch"; // Kafka's words, whatever the codec
            return ErrorCode.InvalidRecord;
        }

        if (!header.IsCrcValid())
        {
            return ErrorCode.CorruptMessage;
        }

        // The order and the words of Kafka's LogValidator.validateBatch.
        var count = header.RecordCount;
        var lastOffsetDelta = header.LastOffsetDelta;
        if (lastOffsetDelta < 0)
        {
            reason = $"Batch has an invalid offset range: last offset delta {lastOffsetDelta}";
            return ErrorCode.InvalidRecord;
        }

        if (count <= 0)
        {
            reason = $"Invalid reported count for record batch: {count}";
            return ErrorCode.InvalidRecord;
        }

        if ((long)lastOffsetDelta + 1 != count)
        {
            reason = $"Inconsistent batch offset range [0, {lastOffsetDelta}] and count of records {count}";
            return ErrorCode.InvalidRecord;
        }

        if (header.Compression > CompressionType.Zstd)
        {
            reason = $"Unknown compression type id: {(int)header.Compression}";
            return ErrorCode.InvalidRecord;
        }

        if (header.IsControl)
        {
            reason = "Clients are not allowed to write control records";
            return ErrorCode.InvalidRecord;
        }

        var producerId = header.ProducerId;
        var baseSequence = header.BaseSequence;
        if (producerId >= 0 && baseSequence < 0)
        {
            reason = $"Invalid sequence number {baseSequence} in record batch with producerId {producerId}";
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
        if (declared < RecordBatch.HeaderSize || declared > rest.Length || new RecordBatchHeader(rest).Magic != 2)
        {
            return false;
        }

        var batch = rest[..(int)declared];
        if (_checkCrc && !new RecordBatchHeader(batch).IsCrcValid())
        {
            return false;
        }

        CurrentStart = _next;
        CurrentLength = (int)declared;
        _next += (int)declared;
        return true;
    }
}
