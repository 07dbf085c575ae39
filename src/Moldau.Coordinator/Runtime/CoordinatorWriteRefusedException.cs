using Moldau.Protocol;

namespace Moldau.Coordinator.Runtime;

/// <summary>
/// The coordinator's partition refused a batch (nothing was written): a transactional producer's
/// epoch is older than the one the partition knows, a marker's coordinator epoch is stale. The
/// operation is answered with <see cref="Error"/>, as Kafka answers the same refusal.
/// </summary>
public sealed class CoordinatorWriteRefusedException(ErrorCode error, string message) : Exception(message)
{
    /// <summary>The error the operation answers with.</summary>
    public ErrorCode Error { get; } = error;
}
