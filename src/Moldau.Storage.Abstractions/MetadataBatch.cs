namespace Moldau.Storage;

/// <summary>The records of one metadata change, appended together and applied whole or not at all.</summary>
/// <param name="Records">The records, in offset order.</param>
public sealed record MetadataBatch(IReadOnlyList<MetadataRecord> Records);
