namespace Moldau.Storage;

/// <summary>Where a batch with a given property sits.</summary>
/// <param name="Offset">The offset found.</param>
/// <param name="Timestamp">The timestamp that goes with it.</param>
public readonly record struct OffsetAndTimestamp(long Offset, long Timestamp);
