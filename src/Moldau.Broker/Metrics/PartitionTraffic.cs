namespace Moldau.Broker.Metrics;

/// <summary>
/// What clients moved through one partition since the broker started: kept on the partition's
/// <see cref="Topics.PartitionHost"/>, added to by the produce and fetch handlers with one
/// interlocked add per field (no lock, no allocation), summed per topic when /metrics is scraped.
/// </summary>
internal sealed class PartitionTraffic
{
    private long _bytesIn;
    private long _messagesIn;
    private long _bytesOut;
    private long _messagesOut;
    private long _produceRequests;
    private long _failedProduceRequests;
    private long _fetchRequests;
    private long _failedFetchRequests;

    /// <summary>Bytes of record batches appended for producers (Kafka's BytesInPerSec).</summary>
    public long BytesIn => Volatile.Read(ref _bytesIn);

    /// <summary>Records appended for producers (Kafka's MessagesInPerSec).</summary>
    public long MessagesIn => Volatile.Read(ref _messagesIn);

    /// <summary>Bytes of record batches returned to fetches (Kafka's BytesOutPerSec).</summary>
    public long BytesOut => Volatile.Read(ref _bytesOut);

    /// <summary>Records in the batches returned to fetches (no Kafka equivalent: Kafka counts only bytes out).</summary>
    public long MessagesOut => Volatile.Read(ref _messagesOut);

    /// <summary>Produce requests for this partition (Kafka's TotalProduceRequestsPerSec counts per partition too).</summary>
    public long ProduceRequests => Volatile.Read(ref _produceRequests);

    /// <summary>Of those, the ones answered with an error (FailedProduceRequestsPerSec).</summary>
    public long FailedProduceRequests => Volatile.Read(ref _failedProduceRequests);

    /// <summary>Fetch requests for this partition (TotalFetchRequestsPerSec).</summary>
    public long FetchRequests => Volatile.Read(ref _fetchRequests);

    /// <summary>Of those, the ones answered with an error (FailedFetchRequestsPerSec).</summary>
    public long FailedFetchRequests => Volatile.Read(ref _failedFetchRequests);

    /// <summary>A produce for this partition: <paramref name="bytes"/> and <paramref name="messages"/> appended, or failed.</summary>
    public void Produced(bool failed, int bytes, int messages)
    {
        Interlocked.Increment(ref _produceRequests);
        if (failed)
        {
            Interlocked.Increment(ref _failedProduceRequests);
            return;
        }

        Interlocked.Add(ref _bytesIn, bytes);
        Interlocked.Add(ref _messagesIn, messages);
    }

    /// <summary>A fetch of this partition answered, failed or not.</summary>
    public void Fetched(bool failed)
    {
        Interlocked.Increment(ref _fetchRequests);
        if (failed)
        {
            Interlocked.Increment(ref _failedFetchRequests);
        }
    }

    /// <summary><paramref name="bytes"/> holding <paramref name="messages"/> records of this partition sent in a fetch response.</summary>
    public void Sent(int bytes, int messages)
    {
        Interlocked.Add(ref _bytesOut, bytes);
        Interlocked.Add(ref _messagesOut, messages);
    }
}
