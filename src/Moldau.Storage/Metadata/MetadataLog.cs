using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Metadata;

/// <summary>One record of the KRaft metadata log.</summary>
/// <param name="Offset">Its offset in the log.</param>
/// <param name="RecordType">The record type (the spec's apiKey, e.g. 2 for TopicRecord).</param>
/// <param name="RecordVersion">The record's version.</param>
/// <param name="Body">The record in its flexible encoding.</param>
public readonly record struct MetadataLogRecord(long Offset, short RecordType, short RecordVersion, ReadOnlyMemory<byte> Body)
{
    /// <summary>The file the record was read from (a segment or a snapshot).</summary>
    public string? File { get; init; }

    /// <summary>The byte position of the record's batch in <see cref="File"/>: where a cut that drops it goes.</summary>
    public int BatchPosition { get; init; }
}

/// <summary>Where the metadata log stops being readable: everything from here on is to be cut.</summary>
/// <param name="File">The segment file.</param>
/// <param name="Position">The byte position in it of the first batch that can't be read.</param>
/// <param name="Offset">The offset of that batch when its header could be read, else -1.</param>
/// <param name="Reason">What is wrong there.</param>
public sealed record MetadataLogCorruption(string File, int Position, long Offset, string Reason);

/// <summary>What a replay reads: the records up to the first corruption, and that corruption if any.</summary>
/// <param name="Records">The records, in offset order.</param>
/// <param name="Corruption">The first batch that could not be read, or null.</param>
public sealed record MetadataLogContents(IReadOnlyList<MetadataLogRecord> Records, MetadataLogCorruption? Corruption);

/// <summary>
/// Reads <c>__cluster_metadata-0</c>: RecordBatch v2 segments whose records have a null key and
/// a value framed as
/// <code>
/// frame_version   unsigned varint   1
/// record_type     unsigned varint   the spec's apiKey
/// record_version  unsigned varint
/// record          the record in its flexible encoding
/// </code>
/// Control batches (leader changes, snapshot markers) are skipped, and so are frames of another version.
/// </summary>
public static class MetadataLogReader
{
    /// <summary>
    /// Every record of the metadata log in <paramref name="directory"/>, in offset order; none when
    /// it doesn't exist. When Kafka left a snapshot (<c>&lt;end offset&gt;-&lt;epoch&gt;.checkpoint</c>),
    /// the latest whole one comes first and stands for every offset below its end offset; the
    /// segments then add the records at or after it. (Kafka deletes segments a snapshot covers.)
    /// </summary>
    public static IEnumerable<MetadataLogRecord> ReadAll(string directory) => Read(directory).Records;

    /// <summary>
    /// As <see cref="ReadAll"/>, stopping at the first batch that can't be read (a bad CRC, a
    /// torn or garbled batch, records that don't parse): the records before it, and where it is.
    /// Zeros after the last batch are not corruption: they are the block padding a direct-I/O
    /// segment has until it is closed, or a tail a crash left unwritten.
    /// </summary>
    public static MetadataLogContents Read(string directory)
    {
        var result = new List<MetadataLogRecord>();
        if (!Directory.Exists(directory))
        {
            return new MetadataLogContents(result, null);
        }

        var from = 0L;
        if (LatestSnapshot(directory) is { } snapshot)
        {
            from = snapshot.EndOffset;
            result.AddRange(snapshot.Records);
        }

        foreach (var path in SegmentFiles(directory))
        {
            var bytes = File.ReadAllBytes(path);
            var records = ReadSegment(bytes, out var stop);
            result.AddRange(records.Where(r => r.Offset >= from).Select(r => r with { File = path }));
            if (stop is { } corrupt && (corrupt.Position < bytes.Length && bytes.AsSpan(corrupt.Position).ContainsAnyExcept((byte)0)))
            {
                return new MetadataLogContents(result, new MetadataLogCorruption(path, corrupt.Position, corrupt.Offset, corrupt.Reason));
            }
        }

        return new MetadataLogContents(result, null);
    }

    /// <summary>
    /// Cuts the metadata log at <paramref name="corruption"/>: its segment is truncated there
    /// (its indexes go, to be rebuilt) and every later segment is deleted, so that appends go on
    /// after the last good batch and the next replay reads what this one did.
    /// </summary>
    public static void Cut(MetadataLogCorruption corruption)
    {
        var directory = Path.GetDirectoryName(corruption.File)!;
        var baseOffset = long.Parse(Path.GetFileNameWithoutExtension(corruption.File), System.Globalization.CultureInfo.InvariantCulture);
        foreach (var path in SegmentFiles(directory))
        {
            if (long.Parse(Path.GetFileNameWithoutExtension(path), System.Globalization.CultureInfo.InvariantCulture) > baseOffset)
            {
                File.Delete(path);
            }
        }

        foreach (var index in Directory.GetFiles(directory, "*.index").Concat(Directory.GetFiles(directory, "*.timeindex")))
        {
            File.Delete(index);
        }

        using (var file = new FileStream(corruption.File, FileMode.Open, FileAccess.Write))
        {
            file.SetLength(corruption.Position);
            file.Flush(flushToDisk: true);
        }

        DirectorySync.Sync(directory);
    }

    private static IEnumerable<string> SegmentFiles(string directory) =>
        Directory.GetFiles(directory, "*.log")
            .Select(p => (Path: p, Base: long.TryParse(Path.GetFileNameWithoutExtension(p), System.Globalization.CultureInfo.InvariantCulture, out var b) ? b : -1))
            .Where(s => s.Base >= 0)
            .OrderBy(s => s.Base)
            .Select(s => s.Path);

    /// <summary>The end offset of the latest whole snapshot in <paramref name="directory"/>, or 0.</summary>
    public static long SnapshotEndOffset(string directory) =>
        Directory.Exists(directory) && LatestSnapshot(directory) is { } snapshot ? snapshot.EndOffset : 0;

    /// <summary>
    /// The latest snapshot that is whole: every batch's CRC holds, nothing trails the last batch,
    /// and the last batch is the control batch with the SnapshotFooterRecord (control type 4).
    /// An incomplete one (a crash while Kafka wrote it) is passed over for an older one.
    /// </summary>
    private static (long EndOffset, List<MetadataLogRecord> Records)? LatestSnapshot(string directory)
    {
        var snapshots = Directory.GetFiles(directory, "*.checkpoint")
            .Select(p => (Path: p, Name: Path.GetFileNameWithoutExtension(p)))
            .Select(f => (f.Path, End: f.Name.Split('-') is [var offset, var epoch] && long.TryParse(offset, out var o) && int.TryParse(epoch, out _) ? o : -1))
            .Where(f => f.End >= 0)
            .OrderByDescending(f => f.End);
        foreach (var (path, end) in snapshots)
        {
            var bytes = File.ReadAllBytes(path);
            if (IsWholeSnapshot(bytes) && ReadSegment(bytes, out var stop) is var records && stop is null)
            {
                return (end, records.Select(r => r with { File = path }).ToList());
            }
        }

        return null;
    }

    private static bool IsWholeSnapshot(byte[] bytes)
    {
        var batches = new RecordBatchEnumerator(bytes, checkCrc: true);
        var end = 0;
        var lastIsFooter = false;
        while (batches.MoveNext())
        {
            end = batches.CurrentStart + batches.CurrentLength;
            var batch = new RecordBatch(bytes.AsMemory(batches.CurrentStart, batches.CurrentLength));
            lastIsFooter = false;
            if (batch.IsControl)
            {
                try
                {
                    foreach (var record in batch.GetRecords())
                    {
                        // A control record's key: int16 version, int16 type.
                        lastIsFooter = record.Key is { Length: >= 4 } key && System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(key.Span[2..]) == SnapshotFooterType;
                    }
                }
                catch (KafkaProtocolException)
                {
                    return false;
                }
            }
        }

        return end == bytes.Length && lastIsFooter;
    }

    /// <summary>The control record type of KRaft's SnapshotFooterRecord.</summary>
    private const short SnapshotFooterType = 4;

    /// <summary>The records of one segment's bytes, stopping at a torn tail.</summary>
    public static List<MetadataLogRecord> ReadSegment(byte[] bytes) => ReadSegment(bytes, out _);

    /// <summary>
    /// The records of one segment's bytes up to the first batch that can't be read: a torn or
    /// garbled batch, a bad CRC, or a CRC-valid batch whose records don't parse (a batch is
    /// taken whole or not at all). <paramref name="stop"/> says where and why, or is null when
    /// every byte was read.
    /// </summary>
    public static List<MetadataLogRecord> ReadSegment(byte[] bytes, out (int Position, long Offset, string Reason)? stop)
    {
        var result = new List<MetadataLogRecord>();
        var batches = new RecordBatchEnumerator(bytes, checkCrc: true);
        var batchRecords = new List<MetadataLogRecord>();
        var next = -1L;
        while (batches.MoveNext())
        {
            var batch = new RecordBatch(bytes.AsMemory(batches.CurrentStart, batches.CurrentLength));
            if (batch.IsControl)
            {
                next = batch.LastOffset + 1;
                continue;
            }

            batchRecords.Clear();
            try
            {
                // Kafka may compress metadata batches (snapshots especially): read them all the same.
                foreach (var record in batch.GetRecords())
                {
                    if (record.Value is not { } value)
                    {
                        continue;
                    }

                    var reader = new KafkaReader(value);
                    if (reader.ReadUnsignedVarInt() != 1)
                    {
                        continue; // a frame version this reader doesn't know
                    }

                    var type = reader.ReadUnsignedVarInt();
                    var version = reader.ReadUnsignedVarInt();
                    if (type > short.MaxValue || version > short.MaxValue)
                    {
                        continue;
                    }

                    batchRecords.Add(new MetadataLogRecord(batch.BaseOffset + record.OffsetDelta, (short)type, (short)version, reader.RemainingMemory) { BatchPosition = batches.CurrentStart });
                }
            }
            catch (KafkaProtocolException e)
            {
                stop = (batches.CurrentStart, batch.BaseOffset, $"records do not parse: {e.Message}");
                return result;
            }

            result.AddRange(batchRecords);
            next = batch.LastOffset + 1;
        }

        // The offset named is the first one lost: the end of the last good batch (-1 if none).
        stop = batches.ValidEnd == bytes.Length ? null : (batches.ValidEnd, next, "a torn batch, a bad CRC or bytes that are not a batch");
        return result;
    }

    /// <summary>Frames a record for the metadata log.</summary>
    public static byte[] Frame(short recordType, short recordVersion, ReadOnlySpan<byte> body)
    {
        var size = 1 + KafkaSize.UnsignedVarInt((uint)recordType) + KafkaSize.UnsignedVarInt((uint)recordVersion) + body.Length;
        var bytes = new byte[size];
        var writer = new KafkaWriter(bytes);
        writer.WriteUnsignedVarInt(1);
        writer.WriteUnsignedVarInt((uint)recordType);
        writer.WriteUnsignedVarInt((uint)recordVersion);
        writer.WriteRaw(body);
        return bytes;
    }
}

/// <summary>Appends framed records to the metadata log, one batch per change, synced before it returns.</summary>
public sealed class MetadataLogWriter : IDisposable
{
    private readonly PartitionLog _log;
    private readonly TimeProvider _time;

    /// <summary>Opens the metadata log in <paramref name="directory"/> (created if missing), with a storage runtime of its own.</summary>
    public MetadataLogWriter(string directory, TimeProvider time)
    {
        _time = time;
        _log = PartitionLog.Open(directory, Options(directory), time);
    }

    /// <summary>Opens the metadata log in <paramref name="directory"/> (created if missing) with the broker's <paramref name="runtime"/>.</summary>
    public MetadataLogWriter(string directory, TimeProvider time, StorageRuntime runtime)
    {
        _time = time;
        _log = PartitionLog.Open(directory, Options(directory), time, runtime);
    }

    // After a snapshot Kafka may have deleted every segment: the log goes on at its end offset.
    private static PartitionLogOptions Options(string directory) => new() { InitialOffset = MetadataLogReader.SnapshotEndOffset(directory) };

    /// <summary>Appends the records as one batch and fsyncs; returns the batch's base offset.</summary>
    public long Append(IReadOnlyList<(short Type, short Version, byte[] Body)> records)
    {
        var now = _time.GetUtcNow().ToUnixTimeMilliseconds();
        var batch = RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(null, MetadataLogReader.Frame(r.Type, r.Version, r.Body), now)).ToList());
        var offset = _log.Append(batch, 0).BaseOffset;
        _log.Flush();
        return offset;
    }

    /// <inheritdoc/>
    public void Dispose() => _log.Dispose();
}
