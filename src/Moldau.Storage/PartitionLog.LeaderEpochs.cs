using Moldau.Protocol.Records;

namespace Moldau.Storage;

/// <summary>The partition's leader epochs (KIP-101, KIP-320), kept in <c>leader-epoch-checkpoint</c>.</summary>
public sealed partial class PartitionLog
{
    private LeaderEpochCache _leaderEpochs = LeaderEpochCache.InMemory();

    /// <summary>The leader epochs of this log and where each starts.</summary>
    public LeaderEpochCache LeaderEpochs => _leaderEpochs;

    /// <summary>
    /// Starts <paramref name="epoch"/> at the log end, as a Kafka leader does when it takes the
    /// epoch, so OffsetForLeaderEpoch for the epochs before it ends there even before anything is
    /// written. Nothing happens when the log already knows this epoch or a newer one.
    /// </summary>
    public void StartEpoch(int epoch)
    {
        lock (_appendLock)
        {
            RecordEpochStart(epoch, _logEndOffset);
        }
    }

    /// <summary>
    /// OffsetForLeaderEpoch: the largest epoch at or below <paramref name="epoch"/> known to this
    /// log, and the offset where it ends (the start of the next epoch, or the log end for the
    /// newest); (-1, -1) when none is known. Answered from the epoch cache, without reading the log.
    /// </summary>
    public (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch) => _leaderEpochs.EndOffsetFor(epoch, LogEndOffset);

    /// <summary>The leader epoch <paramref name="offset"/> was written in, or -1 when unknown.</summary>
    public int EpochForOffset(long offset) => _leaderEpochs.EpochForOffset(offset);

    /// <summary>Called under the append lock before a batch of <paramref name="epoch"/> is written at <paramref name="offset"/>.</summary>
    private void RecordEpochStart(int epoch, long offset)
    {
        // The checkpoint is written before the batch, as Kafka does: after a crash it may name an
        // epoch whose batch never reached the disk (dropped on open), never the reverse.
        if (epoch > _leaderEpochs.LatestEpoch)
        {
            _leaderEpochs.Assign(epoch, offset);
        }
    }

    /// <summary>
    /// Reads <c>leader-epoch-checkpoint</c> and drops the epochs that start at or beyond the
    /// recovered log end. Without a readable file (a log written before Moldau kept one) the
    /// epochs are rebuilt from the batch headers once and written.
    /// </summary>
    private void LoadLeaderEpochs()
    {
        var cache = LeaderEpochCache.Load(Directory);
        if (cache is null)
        {
            cache = LeaderEpochCache.Create(Directory, ScanEpochStarts());
        }
        else
        {
            cache.TruncateFromEnd(_logEndOffset);
            cache.TruncateFromStart(_logStartOffset);
        }

        _leaderEpochs = cache;
    }

    /// <summary>The first batch of each leader epoch, from the batch headers of every segment.</summary>
    private List<EpochEntry> ScanEpochStarts()
    {
        var starts = new List<EpochEntry>();
        var header = new byte[RecordBatch.HeaderSize];
        foreach (var segment in _segments)
        {
            var size = segment.Size;
            for (long position = 0; position + RecordBatch.HeaderSize <= size; position += RecordBatch.DeclaredSize(header))
            {
                segment.Read(header, position);
                var batch = new RecordBatchHeader(header);
                var epoch = batch.PartitionLeaderEpoch;
                if (epoch >= 0 && (starts.Count == 0 || epoch > starts[^1].Epoch))
                {
                    starts.Add(new EpochEntry(epoch, batch.BaseOffset));
                }
            }
        }

        return starts;
    }
}
