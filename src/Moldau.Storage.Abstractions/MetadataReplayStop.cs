namespace Moldau.Storage;

/// <summary>Where a metadata replay stopped before the end, and why; everything from there on was dropped.</summary>
/// <param name="Location">Where (a file and byte position, for the local store).</param>
/// <param name="Offset">The offset of the first record dropped when known, else -1.</param>
/// <param name="Reason">What is wrong there.</param>
public sealed record MetadataReplayStop(string Location, long Offset, string Reason);
