namespace Moldau.Storage;

/// <summary>
/// A transaction that ended with an ABORT marker, as a read_committed Fetch reports it
/// (<c>aborted_transactions</c>): the consumer skips the producer's batches from
/// <paramref name="FirstOffset"/> up to that marker.
/// </summary>
/// <param name="ProducerId">The transactional producer.</param>
/// <param name="FirstOffset">The first offset the transaction wrote in this partition.</param>
public readonly record struct AbortedTransaction(long ProducerId, long FirstOffset);
