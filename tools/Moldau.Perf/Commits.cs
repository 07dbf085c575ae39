using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Moldau.Perf;

/// <summary>
/// The transactions of a transactional produce run: begins one before the first record, decides
/// after each record whether it is time to commit (by count, by age, whichever comes first), and
/// times each commit in two parts: the flush of the transaction's records (their acknowledgements)
/// and CommitTransaction after it, which is then EndTxn alone (librdkafka's commit flushes first,
/// so with nothing left to flush it only sends EndTxn and waits for its answer). Used by the
/// sending thread only.
/// </summary>
internal sealed class Commits(IProducer<Null, byte[]> producer, long? everyRecords, int? everyMs, TimeSpan timeout) : IDisposable
{
    private readonly long _everyTicks = everyMs is { } ms ? ms * Stopwatch.Frequency / 1000 : long.MaxValue;
    private readonly long _everyRecords = everyRecords ?? long.MaxValue;
    private bool _open;
    private long _records;
    private long _beganTicks;
    private IAdminClient? _admin;
    private TopicPartition[] _partitions = [];
    private long[] _ends = [];

    /// <summary>Flush + EndTxn: how long the sender stops for a commit.</summary>
    public LatencyHistogram Whole { get; } = new();

    /// <summary>CommitTransaction after the flush: the EndTxn round trip.</summary>
    public LatencyHistogram EndTxn { get; } = new();

    /// <summary>From the start of EndTxn until a read_committed ListOffsets is past the markers (only with <see cref="ProbeMarkers"/>).</summary>
    public LatencyHistogram? Markers { get; private set; }

    /// <summary>
    /// After each commit, waits until the last stable offset (ListOffsets READ_COMMITTED) of every
    /// partition the transaction wrote is past its marker, and times that from the start of EndTxn.
    /// The sender waits too, so this mode measures the commit, not the throughput.
    /// </summary>
    public void ProbeMarkers(string topic, int partitions)
    {
        _admin = new DependentAdminClientBuilder(producer.Handle).Build();
        _partitions = [.. Enumerable.Range(0, partitions).Select(p => new TopicPartition(topic, p))];
        _ends = Offsets(IsolationLevel.ReadUncommitted);
        Markers = new();
    }

    /// <summary>Registers the transactional id with the coordinator (InitProducerId).</summary>
    public void Init() => producer.InitTransactions(timeout);

    /// <summary>Begins a transaction unless one is open; call before each record.</summary>
    public void BeforeRecord()
    {
        if (!_open)
        {
            producer.BeginTransaction();
            _open = true;
            _records = 0;
            _beganTicks = Meter.Now();
        }
    }

    /// <summary>Counts the record just sent and commits when the transaction is full or old enough.</summary>
    public void AfterRecord()
    {
        _records++;
        if (_records >= _everyRecords || Meter.Now() - _beganTicks >= _everyTicks)
        {
            Commit();
        }
    }

    /// <summary>Commits the open transaction, if any (throws <see cref="KafkaException"/> when it fails).</summary>
    public void Commit()
    {
        if (!_open)
        {
            return;
        }

        // The producer has no background poll thread (see Clients.Producer), so this Flush serves
        // the delivery reports itself and returns as soon as the last one is in.
        var start = Meter.Now();
        var left = producer.Flush(timeout);
        if (left > 0)
        {
            throw new InvalidOperationException($"{left} records of the transaction still undelivered after {timeout.TotalMilliseconds} ms");
        }

        // The end of each partition now, before EndTxn: a partition the transaction wrote gets its
        // marker at this offset, so it is past the marker once its last stable offset is above it.
        var ends = Markers is null ? [] : Offsets(IsolationLevel.ReadUncommitted);
        var flushed = Meter.Now();
        producer.CommitTransaction(timeout);
        var end = Meter.Now();
        _open = false;
        Whole.Record(Meter.Micros(start, end));
        EndTxn.Record(Meter.Micros(flushed, end));
        if (Markers is not null)
        {
            WaitForMarkers(ends);
            Markers.Record(Meter.Micros(flushed, Meter.Now()));
        }
    }

    private void WaitForMarkers(long[] ends)
    {
        var deadline = Meter.Now() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var stable = Offsets(IsolationLevel.ReadCommitted);
            var past = true;
            for (var i = 0; i < ends.Length; i++)
            {
                // Partitions the transaction did not write have no marker to wait for.
                past &= ends[i] == _ends[i] || stable[i] > ends[i];
            }

            if (past)
            {
                _ends = Offsets(IsolationLevel.ReadUncommitted);
                return;
            }

            if (Meter.Now() > deadline)
            {
                throw new InvalidOperationException($"the last stable offset did not pass the commit markers within {timeout.TotalMilliseconds} ms");
            }
        }
    }

    private long[] Offsets(IsolationLevel isolation)
    {
        var result = _admin!.ListOffsetsAsync(
            _partitions.Select(tp => new TopicPartitionOffsetSpec { TopicPartition = tp, OffsetSpec = OffsetSpec.Latest() }),
            new ListOffsetsOptions { IsolationLevel = isolation, RequestTimeout = timeout }).GetAwaiter().GetResult();
        var offsets = new long[_partitions.Length];
        foreach (var info in result.ResultInfos)
        {
            offsets[info.TopicPartitionOffsetError.Partition.Value] = info.TopicPartitionOffsetError.Offset.Value;
        }

        return offsets;
    }

    /// <summary>Writes the commit count and both latencies.</summary>
    public void WriteSummary(TextWriter output)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Whole.Count} transactions committed"));
        Write(output, "commit (flush + EndTxn)", Whole);
        Write(output, "EndTxn", EndTxn);
        if (Markers is not null)
        {
            Write(output, "EndTxn to markers", Markers);
        }

        output.Flush();
    }

    private static void Write(TextWriter output, string name, LatencyHistogram latency) => output.WriteLine(string.Create(
        CultureInfo.InvariantCulture,
        $"{name} latency ms: avg {latency.MeanMicros / 1000:F3}, p50 {latency.PercentileMicros(0.50) / 1000:F3}, p99 {latency.PercentileMicros(0.99) / 1000:F3}, max {latency.MaxMicros / 1000.0:F3}"));

    /// <inheritdoc/>
    public void Dispose() => _admin?.Dispose();
}
