namespace Moldau.Storage;

/// <summary>One metadata record as stored: its KRaft record type and version and its encoded body.</summary>
/// <param name="Type">The record type (the spec's apiKey, e.g. 2 for TopicRecord).</param>
/// <param name="Version">The record's version.</param>
/// <param name="Body">The record in its flexible encoding.</param>
public readonly record struct MetadataRecord(short Type, short Version, ReadOnlyMemory<byte> Body)
{
    /// <summary>The record's offset in the metadata log when it was read from there, else -1.</summary>
    public long Offset { get; init; } = -1;
}
