namespace Moldau.Storage;

/// <summary>
/// A partition log whose offsets are assigned when a batch is committed to shared storage, not
/// when it is appended (cluster mode: an object upload, then a PostgreSQL transaction). Produce
/// calls <see cref="AppendAsync"/> instead of <see cref="IPartitionLog.Append"/> on such a log and
/// answers once the task completes; everything else uses <see cref="IPartitionLog"/>.
/// </summary>
public interface ICommitAssignedLog : IPartitionLog
{
    /// <summary>
    /// Copies <paramref name="batch"/> (validated by the caller) before returning, so the caller's
    /// buffer may go; the task completes once the batch is durable and committed, with the offsets
    /// the commit assigned (a duplicate: its original offsets; a refusal: its status). Faults with
    /// an <see cref="IOException"/> when it could not be stored (retriable for the client).
    /// </summary>
    /// <param name="batch">One RecordBatch v2, exactly its declared size.</param>
    /// <param name="leaderEpoch">The partition's current leader epoch, written into the batch.</param>
    Task<AppendResult> AppendAsync(Span<byte> batch, int leaderEpoch);
}
