using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Metadata;

/// <summary>One record of the KRaft metadata log.</summary>
/// <param name="Offset">Its offset in the log.</param>
/// <param name="RecordType">The record type (the spec's apiKey, e.g. 2 for TopicRecord).</param>
/// <param name="RecordVersion">The record's version.</param>
/// <param name="Body">The record in its flexible encoding.</param>
public readonly record struct MetadataLogRecord(long Offset, short RecordType, short RecordVersion, ReadOnlyMemory<byte> Body);

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
    public static IEnumerable<MetadataLogRecord> ReadAll(string directory)
    {
        if (!Directory.Exists(directory))
        {
            yield break;
        }

        var from = 0L;
        if (LatestSnapshot(directory) is { } snapshot)
        {
            from = snapshot.EndOffset;
            foreach (var record in snapshot.Records)
            {
                yield return record;
            }
        }

        var segments = Directory.GetFiles(directory, "*.log")
            .Select(p => (Path: p, Base: long.TryParse(Path.GetFileNameWithoutExtension(p), out var b) ? b : -1))
            .Where(s => s.Base >= 0)
            .OrderBy(s => s.Base);
        foreach (var (path, _) in segments)
        {
            var bytes = File.ReadAllBytes(path);
            foreach (var record in ReadSegment(bytes).Where(r => r.Offset >= from))
            {
                yield return record;
            }
        }
    }

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
            if (IsWholeSnapshot(bytes))
            {
                return (end, ReadSegment(bytes));
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
    public static List<MetadataLogRecord> ReadSegment(byte[] bytes)
    {
        var result = new List<MetadataLogRecord>();
        var batches = new RecordBatchEnumerator(bytes, checkCrc: true);
        while (batches.MoveNext())
        {
            var batch = new RecordBatch(bytes.AsMemory(batches.CurrentStart, batches.CurrentLength));
            if (batch.IsControl)
            {
                continue;
            }

            RecordEnumerator records;
            try
            {
                // Kafka may compress metadata batches (snapshots especially): read them all the same.
                records = batch.GetRecords();
            }
            catch (KafkaProtocolException)
            {
                continue;
            }

            foreach (var record in records)
            {
                if (record.Value is not { } value)
                {
                    continue;
                }

                var reader = new KafkaReader(value);
                if (reader.ReadUnsignedVarInt() != 1)
                {
                    continue;
                }

                var type = reader.ReadUnsignedVarInt();
                var version = reader.ReadUnsignedVarInt();
                if (type > short.MaxValue || version > short.MaxValue)
                {
                    continue;
                }

                result.Add(new MetadataLogRecord(batch.BaseOffset + record.OffsetDelta, (short)type, (short)version, reader.RemainingMemory));
            }
        }

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

    /// <summary>Opens the metadata log in <paramref name="directory"/> (created if missing).</summary>
    public MetadataLogWriter(string directory, TimeProvider time)
    {
        _time = time;

        // After a snapshot Kafka may have deleted every segment: the log goes on at its end offset.
        _log = PartitionLog.Open(directory, new PartitionLogOptions { InitialOffset = MetadataLogReader.SnapshotEndOffset(directory) }, time);
    }

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
