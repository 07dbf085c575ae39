using Moldau.Protocol.Records;

namespace Moldau.Storage.Cleaning;

/// <summary>
/// What a cleaning pass knows of transactions as it walks the batches in offset order (Kafka's
/// <c>CleanedTransactionMetadata</c>): which data batches belong to an aborted transaction (their
/// records go), and which markers may go because no batch of their transaction is left.
/// </summary>
/// <remarks>
/// Kafka's rules: a batch of an aborted transaction is removed (a producer's last batch stays as a
/// header); an ABORT marker stays while the pass still saw a batch of its transaction, and its
/// transaction index entry stays with it; a COMMIT marker stays while the pass saw a batch of its
/// transaction; a marker that may go is kept until delete.retention.ms after the first pass that
/// found it could (its batch's delete horizon, as for tombstones). One instance walks one pass.
/// </remarks>
/// <param name="aborted">The aborted transactions that may touch the pass's batches (from the transaction indexes), by first offset.</param>
internal sealed class CleanedTransactions(IReadOnlyList<AbortedTxnEntry> aborted)
{
    private readonly Dictionary<long, (AbortedTxnEntry Entry, bool Seen)> _ongoingAborted = [];
    private readonly HashSet<long> _ongoingCommitted = [];
    private int _next;

    /// <summary>The index entries of the ABORT markers kept since the last <see cref="TakeKept"/>.</summary>
    private readonly List<AbortedTxnEntry> _kept = [];

    /// <summary>A data batch: true when it belongs to an aborted transaction.</summary>
    public bool OnBatch(RecordBatch batch)
    {
        StartUpTo(batch.LastOffset);
        if (!batch.IsTransactional || batch.ProducerId < 0)
        {
            return false;
        }

        if (_ongoingAborted.TryGetValue(batch.ProducerId, out var txn))
        {
            _ongoingAborted[batch.ProducerId] = (txn.Entry, true);
            return true;
        }

        _ongoingCommitted.Add(batch.ProducerId);
        return false;
    }

    /// <summary>A control batch: true when it may go (no batch of its transaction was seen).</summary>
    public bool OnMarker(RecordBatch batch)
    {
        StartUpTo(batch.LastOffset);
        if (batch.RecordCount == 0)
        {
            return true; // emptied by an earlier pass
        }

        if (!ProducerStateTable.TryReadMarker(batch.Bytes.Span, out var type, out _))
        {
            return false; // a control record Kafka doesn't know: kept
        }

        if (type == ControlRecordType.Abort)
        {
            if (_ongoingAborted.Remove(batch.ProducerId, out var txn) && txn.Seen)
            {
                _kept.Add(txn.Entry);
                return false;
            }

            return true;
        }

        return !_ongoingCommitted.Remove(batch.ProducerId);
    }

    /// <summary>The index entries of the ABORT markers kept since the last call (one segment's), oldest first.</summary>
    public List<AbortedTxnEntry> TakeKept()
    {
        var kept = _kept.ToList();
        _kept.Clear();
        return kept;
    }

    private void StartUpTo(long offset)
    {
        while (_next < aborted.Count && aborted[_next].FirstOffset <= offset)
        {
            var txn = aborted[_next++];
            _ongoingAborted[txn.ProducerId] = (txn, false);
        }
    }
}
