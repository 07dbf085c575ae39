namespace Moldau.Storage;

/// <summary>The local implementation of the storage seam's partition log.</summary>
public sealed partial class PartitionLog : IPartitionLog;
