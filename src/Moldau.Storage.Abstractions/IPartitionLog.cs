using Moldau.Storage.Cleaning;

namespace Moldau.Storage;

/// <summary>
/// The log of one partition, as the broker's handlers, retention, the cleaner and the
/// coordinators use it: RecordBatch v2 bytes with absolute offsets, appended at the end and read
/// by offset. <c>PartitionLog</c> in Moldau.Storage (segments in a local log dir) is one
/// implementation; whoever opens a log knows which one it is, nobody else does.
/// </summary>
/// <remarks>
/// <para>
/// The offsets: <see cref="LogStartOffset"/> &lt;= <see cref="LogEndOffset"/> and
/// <see cref="LastStableOffset"/> &lt;= <see cref="HighWatermark"/> &lt;= <see cref="LogEndOffset"/>,
/// each only ever moving forward while the log is open. Records at or past the high watermark
/// are written but not yet durable: consumers don't see them, the broker's own readers may.
/// </para>
/// <para>
/// Appends are serialised by the log; reads, lookups and the offset properties run concurrently
/// with them and never see a half-written batch. Storage failures surface as
/// <see cref="IOException"/> and leave the log as it was before the call; a closed log throws
/// <see cref="ObjectDisposedException"/> from <see cref="Append"/>.
/// </para>
/// <para>
/// The hot path (Produce and Fetch) calls <see cref="Append"/>, <see cref="WaitDurableAsync"/>,
/// <see cref="RequestDurableSoon"/>, the offsets and
/// <see cref="Read(long, int, long, long, List{byte[]})"/> once per partition per request:
/// an implementation must not allocate in them in steady state beyond what they return.
/// </para>
/// </remarks>
public interface IPartitionLog : IDisposable
{
    /// <summary>
    /// Where the log is kept. For a local log its directory, <c>&lt;log dir&gt;/&lt;topic&gt;-&lt;partition&gt;</c>;
    /// DescribeLogDirs reports a partition under the log dir that is this path's parent.
    /// </summary>
    string Directory { get; }

    /// <summary>The first offset still in the log (DeleteRecords and retention move it forward).</summary>
    long LogStartOffset { get; }

    /// <summary>
    /// The offset up to which consumers may read: what the log's durability policy counts as
    /// durable (for the local log: fsynced, unless Kafka's flush settings trust the page cache).
    /// </summary>
    long HighWatermark { get; }

    /// <summary>
    /// The offset up to which read_committed consumers may read (Kafka's LSO): the first unstable
    /// offset bounded by the high watermark. Unstable is the first offset of a transaction still
    /// open here, or of one whose COMMIT/ABORT marker is not yet below the high watermark (not yet
    /// durable); it is never below <see cref="LogStartOffset"/>. The high watermark when no
    /// transaction is unstable. It moves only when the high watermark does (a marker is appended at
    /// the log end, so the transaction it ends turns stable when the high watermark passes it), and
    /// <see cref="OnHighWatermarkAdvanced"/> runs after it moved.
    /// </summary>
    long LastStableOffset { get; }

    /// <summary>The offset the next appended record gets.</summary>
    long LogEndOffset { get; }

    /// <summary>
    /// The offset below which everything is known to be on stable storage whatever the policy
    /// (Kafka's recovery point): a reader that must not lose what it wrote (a coordinator) calls
    /// <see cref="Flush"/> while this is below its records. At most the log end.
    /// </summary>
    long RecoveryPoint { get; }

    /// <summary>
    /// Called, on whatever thread moved it, after the high watermark moved forward; long-polling
    /// fetches wake on it. It must return quickly and must not call back into the log's appends.
    /// </summary>
    Action? OnHighWatermarkAdvanced { get; set; }

    /// <summary>
    /// Appends one batch the caller validated (RecordBatchValidator): rewrites its base offset to
    /// the log end and its partition leader epoch to <paramref name="leaderEpoch"/> in place (both
    /// outside the CRC) and stores it; the batch is readable below <see cref="LogEndOffset"/> when
    /// this returns, durable once <see cref="WaitDurableAsync"/> says so. The caller's buffer is
    /// only borrowed for the call. A batch of an idempotent producer is first checked against that
    /// producer's state: a retry of one of its last five batches is not stored again and gets its
    /// original offsets (<see cref="AppendStatus.Duplicate"/>), a gap in its sequence or an older
    /// producer epoch is refused. A <paramref name="leaderEpoch"/> newer than any the log knows
    /// starts at this batch (<see cref="EndOffsetForEpoch"/>).
    /// <para>
    /// Transactions, as Kafka keeps them: a transactional batch (the attribute's transactional bit)
    /// opens the producer's transaction in this partition unless one is open; a non-transactional
    /// batch of a producer with an open transaction is refused (<see cref="AppendStatus.InvalidTxnState"/>).
    /// A marker (a control batch holding one COMMIT or ABORT record, base sequence -1, as
    /// <c>ControlRecordBatch.Build</c> makes it) is refused with an older producer epoch than the
    /// producer's (<see cref="AppendStatus.InvalidProducerEpoch"/>) or an older coordinator epoch than
    /// its last marker's (<see cref="AppendStatus.TransactionCoordinatorFenced"/>); a newer producer
    /// epoch is taken (the coordinator bumped it). It ends the open transaction; an ABORT records it
    /// for <see cref="AbortedTransactions"/> (the segment's <c>.txnindex</c>).
    /// </para>
    /// </summary>
    /// <param name="batch">One RecordBatch v2, exactly its declared size.</param>
    /// <param name="leaderEpoch">The partition's current leader epoch.</param>
    /// <param name="durabilityWanted">Somebody will wait for this batch to be durable (acks=all): don't linger before syncing it.</param>
    AppendResult Append(Span<byte> batch, int leaderEpoch, bool durabilityWanted = false);

    /// <summary>
    /// Completes once the high watermark is at or past <paramref name="offset"/>, that is once
    /// the records below it are durable by the log's policy (acks=all). One sync may serve every
    /// waiter of its moment. Faults with an <see cref="IOException"/> when making the data
    /// durable failed.
    /// </summary>
    Task WaitDurableAsync(long offset);

    /// <summary>
    /// A reader waits at the high watermark (a fetch, ListOffsets latest): records appended
    /// without anyone waiting for their durability should become durable now, not after a linger.
    /// </summary>
    void RequestDurableSoon();

    /// <summary>Makes everything appended so far durable before returning, and moves the high watermark to it.</summary>
    void Flush();

    /// <summary>
    /// Reads whole batches starting with the one that holds <paramref name="offset"/>, up to
    /// <paramref name="maxBytes"/> (at least one batch when <paramref name="minOneBatch"/>), and
    /// none that starts at or beyond <paramref name="maxOffset"/>, into a new array. Empty at or
    /// past min(<paramref name="maxOffset"/>, <see cref="LogEndOffset"/>). Off the hot path.
    /// </summary>
    ReadOnlyMemory<byte> Read(long offset, int maxBytes, bool minOneBatch, long maxOffset);

    /// <summary>
    /// Fetch's read: whole batches starting with the one that holds <paramref name="offset"/>, at
    /// most <paramref name="maxBytes"/> of them, none that starts at or beyond
    /// <paramref name="maxOffset"/>. A first batch larger than <paramref name="maxBytes"/> is
    /// returned whole when it is at most <paramref name="wholeFirstBatchUpTo"/> bytes (KIP-74).
    /// Empty at or past min(<paramref name="maxOffset"/>, <see cref="LogEndOffset"/>).
    /// </summary>
    /// <param name="offset">The offset to read from; the caller has checked it is not below <see cref="LogStartOffset"/>.</param>
    /// <param name="maxBytes">The byte limit.</param>
    /// <param name="wholeFirstBatchUpTo">How large a first batch may be returned whole beyond the limit (0: never).</param>
    /// <param name="maxOffset">
    /// The isolation level's bound (<see cref="PartitionLogExtensions.ReadLimit"/>): the high
    /// watermark for read_uncommitted, the last stable offset for read_committed, the log end for
    /// the broker's own readers. The caller reads it once and reports the same value.
    /// </param>
    /// <param name="rented">
    /// Null: the bytes come in a new array. Otherwise the bytes are read into arrays rented from
    /// <c>ArrayPool&lt;byte&gt;.Shared</c>, each added to this list; the caller returns them to that
    /// pool once it no longer uses the memory (after the response is sent), and not before.
    /// </param>
    ReadOnlyMemory<byte> Read(long offset, int maxBytes, long wholeFirstBatchUpTo, long maxOffset, List<byte[]>? rented);

    /// <summary>
    /// ListOffsets by timestamp, from the batch headers: the first batch below the high watermark
    /// whose last offset is at or after <paramref name="fromOffset"/> and that may hold a record
    /// stamped at or after <paramref name="timestamp"/> (its max timestamp says so, or its max
    /// timestamp is below its base timestamp, some clients leave it unset, so only its records can
    /// tell). Returns the batch's base offset (not below <see cref="LogStartOffset"/>) and its max
    /// timestamp; null when there is none. The caller reads that batch's records for the exact offset.
    /// </summary>
    OffsetAndTimestamp? FindOffsetForTimestamp(long timestamp, long fromOffset = 0);

    /// <summary>
    /// ListOffsets MAX_TIMESTAMP (KIP-734): the first record below the high watermark holding the
    /// largest timestamp, and that timestamp (KAFKA-16310); null when there is no record.
    /// </summary>
    OffsetAndTimestamp? FindMaxTimestamp();

    /// <summary>
    /// Starts <paramref name="epoch"/> at the log end, as a Kafka leader does when it takes the
    /// epoch; nothing happens when the log knows this epoch or a newer one.
    /// </summary>
    void StartEpoch(int epoch);

    /// <summary>
    /// OffsetForLeaderEpoch (KIP-101, KIP-320): for the newest epoch, that epoch and the log end;
    /// for an older one, the largest known epoch at or below it and the start of the epoch after;
    /// for one older than every known epoch, the epoch asked for and the first epoch's start;
    /// (-1, -1) for -1, an epoch newer than every known one, or a log without epochs.
    /// </summary>
    (int Epoch, long EndOffset) EndOffsetForEpoch(int epoch);

    /// <summary>The leader epoch <paramref name="offset"/> was written in, or -1 when unknown.</summary>
    int EpochForOffset(long offset);

    /// <summary>The idempotent and transactional producers this partition knows (DescribeProducers).</summary>
    IReadOnlyList<ActiveProducer> ActiveProducers();

    /// <summary>
    /// The aborted transactions a read_committed fetch of the offsets from
    /// <paramref name="fetchOffset"/> up to (not including) <paramref name="upperBoundOffset"/> must
    /// know of (Kafka's <c>collectAbortedTxns</c>): every transaction ended by an ABORT marker at or
    /// after <paramref name="fetchOffset"/> whose first offset is below
    /// <paramref name="upperBoundOffset"/>, oldest marker first. Empty (and no allocation) for a log
    /// that has none. Runs concurrently with appends.
    /// </summary>
    /// <param name="fetchOffset">The first offset fetched.</param>
    /// <param name="upperBoundOffset">The offset after the last record fetched (exclusive).</param>
    IReadOnlyList<AbortedTransaction> AbortedTransactions(long fetchOffset, long upperBoundOffset);

    /// <summary>
    /// Moves the log start offset forward to <paramref name="offset"/>, at most to the log end
    /// (DeleteRecords, retention): offsets below it are no longer served, epochs that ended
    /// before it are forgotten, and storage wholly below it may be freed. Never moves it back.
    /// As in Kafka, it may pass the first offset of an open transaction (DeleteRecords up to the
    /// high watermark): the transaction stays open, and the last stable offset is then not below
    /// the new log start. Retention keeps such segments (it stops at <see cref="LastStableOffset"/>).
    /// </summary>
    void AdvanceLogStartOffset(long offset);

    /// <summary>The log's segments, oldest first; the last is the one appends go to. Retention deletes whole segments.</summary>
    IReadOnlyList<SegmentInfo> Segments();

    /// <summary>Bytes of all segments (DescribeLogDirs).</summary>
    long SizeInBytes { get; }

    /// <summary>
    /// Compaction (cleanup.policy=compact): runs a cleaning pass when the log is dirty enough or a
    /// kept tombstone's delete horizon has passed; null when it did not run. Offsets never change.
    /// </summary>
    CleaningResult? CleanIfDirty(CleanerSettings settings);

    /// <summary>The settings the log runs with (its topic's configs, resolved).</summary>
    PartitionLogOptions Options { get; }

    /// <summary>Gives the open log new settings (a config change); what only opening uses is kept.</summary>
    void Reconfigure(PartitionLogOptions options);
}
