namespace Moldau.Storage.Metadata;

/// <summary>
/// The local <see cref="IMetadataStore"/>: the KRaft metadata log in a directory
/// (<c>&lt;log.dirs[0]&gt;/__cluster_metadata-0</c>), read by <see cref="MetadataLogReader"/>
/// and appended to by <see cref="MetadataLogWriter"/> in the format Kafka writes.
/// </summary>
/// <param name="directory">The log's directory.</param>
/// <param name="time">The clock.</param>
/// <param name="runtime">The broker's storage runtime; null: the writer's log gets one of its own.</param>
public sealed class MetadataLog(string directory, TimeProvider time, StorageRuntime? runtime = null) : IMetadataStore
{
    private readonly Lock _appendLock = new();
    private MetadataLogWriter? _writer;

    /// <summary>The log's directory.</summary>
    public string Directory { get; } = directory;

    /// <inheritdoc/>
    public MetadataReplayResult Replay(Func<MetadataBatch, string?> apply)
    {
        var contents = MetadataLogReader.Read(Directory);
        var corruption = contents.Corruption;
        var applied = 0;
        var batch = new List<MetadataRecord>();
        var records = contents.Records;
        for (var i = 0; i < records.Count; i++)
        {
            var record = records[i];
            batch.Add(new MetadataRecord(record.RecordType, record.RecordVersion, record.Body) { Offset = record.Offset });
            var next = i + 1 < records.Count ? records[i + 1] : default;
            if (i + 1 < records.Count && next.File == record.File && next.BatchPosition == record.BatchPosition)
            {
                continue;
            }

            if (apply(new MetadataBatch([.. batch])) is { } refused)
            {
                // A batch is applied whole or not at all, so a cut at its start leaves what was applied.
                corruption = new MetadataLogCorruption(record.File ?? Directory, record.BatchPosition, batch[0].Offset, refused);
                break;
            }

            applied += batch.Count;
            batch.Clear();
        }

        if (corruption is null)
        {
            return new MetadataReplayResult(applied, null);
        }

        // A snapshot is never cut: Kafka replaces it whole.
        if (corruption.File.EndsWith(".log", StringComparison.Ordinal))
        {
            MetadataLogReader.Cut(corruption);
        }

        return new MetadataReplayResult(applied, new MetadataReplayStop(corruption.File, corruption.Position, corruption.Offset, corruption.Reason));
    }

    /// <inheritdoc/>
    public void Append(IReadOnlyList<MetadataRecord> records)
    {
        lock (_appendLock)
        {
            // Opened at the first append, after replay has cut a corrupt tail.
            _writer ??= runtime is null ? new MetadataLogWriter(Directory, time) : new MetadataLogWriter(Directory, time, runtime);
            _writer.Append([.. records.Select(r => (r.Type, r.Version, r.Body.ToArray()))]);
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        lock (_appendLock)
        {
            _writer?.Dispose();
            _writer = null;
        }
    }
}
