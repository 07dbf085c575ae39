namespace Moldau.Protocol;

/// <summary>A tagged field this code does not know, kept so it can be written back unchanged.</summary>
/// <param name="Tag">The field's tag.</param>
/// <param name="Data">The field's raw bytes (without tag and length).</param>
public sealed record TaggedField(int Tag, byte[] Data);
