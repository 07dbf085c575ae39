namespace Moldau.Storage;

/// <summary>What a metadata replay did.</summary>
/// <param name="Records">The records applied.</param>
/// <param name="Stop">Where it stopped early (a batch that could not be read or applied), or null when it read to the end.</param>
public sealed record MetadataReplayResult(int Records, MetadataReplayStop? Stop);
