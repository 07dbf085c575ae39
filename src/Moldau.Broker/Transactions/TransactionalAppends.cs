using System.Runtime.CompilerServices;
using Moldau.Storage;

namespace Moldau.Broker.Transactions;

/// <summary>
/// One lock per partition log, taken around a transactional produce's check-and-append and around
/// a marker's append (KIP-890 part 1). The check reads the coordinator's published state and the
/// coordinator publishes PrepareCommit / PrepareAbort before it writes any marker, so under this
/// lock a transactional batch either lands before its transaction's marker or is refused: a late
/// write can never open a transaction after the marker that ended it (a hanging transaction).
/// Kafka closes the same window with a verification guard in the partition's producer state.
/// </summary>
internal sealed class TransactionalAppends
{
    private readonly ConditionalWeakTable<IPartitionLog, object> _locks = [];

    /// <summary>The lock of <paramref name="log"/>.</summary>
    public object LockFor(IPartitionLog log) => _locks.GetValue(log, static _ => new object());
}
