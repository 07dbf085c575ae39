using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Runtime;

/// <summary>
/// What a write operation decided: the records to write and the response to give once they are
/// durable and applied. The operation itself changes no state that its records carry; the
/// runtime applies those through the shard's replay, so a live change and a load take one path.
/// </summary>
/// <typeparam name="T">The response.</typeparam>
public sealed class CoordinatorResult<T>
{
    private CoordinatorResult(IReadOnlyList<RecordToWrite> records, T response, Func<ErrorCode, T>? failed, Action? committed, long producerId = -1, short producerEpoch = -1, bool appliedOnAppend = false)
    {
        AppliedOnAppend = appliedOnAppend;
        Records = records;
        Response = response;
        Failed = failed;
        Committed = committed;
        ProducerId = producerId;
        ProducerEpoch = producerEpoch;
    }

    /// <summary>The records to append, in order; empty for an operation that writes nothing.</summary>
    public IReadOnlyList<RecordToWrite> Records { get; }

    /// <summary>The response once the records are durable and applied.</summary>
    public T Response { get; }

    /// <summary>
    /// Runs, in the shard's turn, after the records were applied: the in-memory effects that must
    /// wait for durability (handing out an assignment that is now recorded).
    /// </summary>
    public Action? Committed { get; }

    /// <summary>
    /// The transactional producer the records are written for, or -1: then they go in a
    /// transactional batch with its id and epoch, and count only once its transaction commits
    /// (Kafka's <c>scheduleTransactionalWriteOperation</c>).
    /// </summary>
    public long ProducerId { get; }

    /// <summary>
    /// The records are applied (and the response given) once appended, without waiting for their
    /// fsync: only for records whose loss in a crash the load repairs by itself (the transaction
    /// coordinator's CompleteCommit / CompleteAbort: a load that finds the transaction still
    /// prepared writes its markers again and completes it). They become durable with the next fsync
    /// of the partition, at the latest with the next record of the shard that is waited for.
    /// </summary>
    public bool AppliedOnAppend { get; }

    /// <summary>The transactional producer's epoch, or -1.</summary>
    public short ProducerEpoch { get; }

    /// <summary>Whether the records are written in a transaction of <see cref="ProducerId"/>.</summary>
    public bool IsTransactional => ProducerId >= 0;

    /// <summary>Builds the response (undoing any in-memory effect) when the records could not be written, given the error Kafka answers with.</summary>
    public Func<ErrorCode, T>? Failed { get; }

    /// <summary>An answer that writes nothing.</summary>
    public static CoordinatorResult<T> Of(T response) => new([], response, null, null);

    /// <summary>An answer that needs <paramref name="records"/> durable first.</summary>
    public static CoordinatorResult<T> Of(IReadOnlyList<RecordToWrite> records, T response, Func<ErrorCode, T> failed, Action? committed = null) =>
        new(records, response, failed, committed);

    /// <summary>
    /// An answer given once <paramref name="records"/> are appended, durable or not
    /// (<see cref="AppliedOnAppend"/>): for records a load can do without.
    /// </summary>
    public static CoordinatorResult<T> OnAppend(IReadOnlyList<RecordToWrite> records, T response, Func<ErrorCode, T> failed, Action? committed = null) =>
        new(records, response, failed, committed, appliedOnAppend: true);

    /// <summary>
    /// An answer that needs <paramref name="records"/> durable first, written in a transactional
    /// batch of <paramref name="producerId"/> at <paramref name="producerEpoch"/>: the shard's
    /// replay holds them until the transaction's marker.
    /// </summary>
    public static CoordinatorResult<T> Transactional(long producerId, short producerEpoch, IReadOnlyList<RecordToWrite> records, T response, Func<ErrorCode, T> failed) =>
        new(records, response, failed, null, producerId, producerEpoch);
}
