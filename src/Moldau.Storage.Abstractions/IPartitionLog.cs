namespace Moldau.Storage;

/// <summary>
/// One partition's log as the broker and the coordinators see it. The partition-seam work
/// gives this interface its members; until it lands it only names the type the
/// <see cref="ILogManager"/> hands out.
/// </summary>
public interface IPartitionLog;
