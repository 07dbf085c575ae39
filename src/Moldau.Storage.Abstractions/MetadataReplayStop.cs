namespace Moldau.Storage;

/// <summary>Where a metadata replay stopped before the end, and why; everything from there on was dropped.</summary>
/// <param name="Location">Where (a file, for the local store).</param>
/// <param name="Position">The byte position in <paramref name="Location"/> of the first batch dropped, or -1.</param>
/// <param name="Offset">The offset of the first record dropped when known, else -1.</param>
/// <param name="Reason">What is wrong there.</param>
public sealed record MetadataReplayStop(string Location, long Position, long Offset, string Reason);
