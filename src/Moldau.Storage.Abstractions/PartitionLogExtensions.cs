namespace Moldau.Storage;

/// <summary>Helpers over <see cref="IPartitionLog"/> that every implementation shares.</summary>
public static class PartitionLogExtensions
{
    /// <summary>
    /// The offset a read with <paramref name="isolation"/> stops before: pass it as the
    /// <c>maxOffset</c> of <see cref="IPartitionLog.Read(long, int, long, long, List{byte[]})"/>
    /// and report the same value, so the answer and the records agree.
    /// </summary>
    public static long ReadLimit(this IPartitionLog log, FetchIsolation isolation)
    {
        ArgumentNullException.ThrowIfNull(log);
        return isolation switch
        {
            FetchIsolation.LogEnd => log.LogEndOffset,
            FetchIsolation.HighWatermark => log.HighWatermark,
            FetchIsolation.TxnCommitted => log.LastStableOffset,
            _ => throw new ArgumentOutOfRangeException(nameof(isolation), isolation, null),
        };
    }
}
