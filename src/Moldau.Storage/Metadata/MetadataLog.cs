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
    /// <summary>Every record in every segment of <paramref name="directory"/>, in offset order; none when it doesn't exist.</summary>
    public static IEnumerable<MetadataLogRecord> ReadAll(string directory)
    {
        if (!Directory.Exists(directory))
        {
            yield break;
        }

        var segments = Directory.GetFiles(directory, "*.log")
            .Select(p => (Path: p, Base: long.TryParse(Path.GetFileNameWithoutExtension(p), out var b) ? b : -1))
            .Where(s => s.Base >= 0)
            .OrderBy(s => s.Base);
        foreach (var (path, _) in segments)
        {
            var bytes = File.ReadAllBytes(path);
            foreach (var record in ReadSegment(bytes))
            {
                yield return record;
            }
        }
    }

    /// <summary>The records of one segment's bytes, stopping at a torn tail.</summary>
    public static List<MetadataLogRecord> ReadSegment(byte[] bytes)
    {
        var result = new List<MetadataLogRecord>();
        var batches = new RecordBatchEnumerator(bytes, checkCrc: true);
        while (batches.MoveNext())
        {
            var batch = new RecordBatch(bytes.AsMemory(batches.CurrentStart, batches.CurrentLength));
            if (batch.IsControl || batch.Compression != CompressionType.None)
            {
                continue;
            }

            foreach (var record in batch.GetRecords())
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
        _log = PartitionLog.Open(directory, new PartitionLogOptions(), time);
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
