using System.Diagnostics;
using System.Globalization;
using Confluent.Kafka;

namespace Moldau.Perf;

/// <summary>
/// The transactions of a transactional produce run: begins one before the first record, decides
/// after each record whether it is time to commit (by count, by age, whichever comes first), and
/// times each commit in two parts: the flush of the transaction's records (their acknowledgements)
/// and CommitTransaction after it, which is then EndTxn alone (librdkafka's commit flushes first,
/// so with nothing left to flush it only sends EndTxn and waits for its answer). Used by the
/// sending thread only.
/// </summary>
internal sealed class Commits(IProducer<Null, byte[]> producer, long? everyRecords, int? everyMs, TimeSpan timeout)
{
    private readonly long _everyTicks = everyMs is { } ms ? ms * Stopwatch.Frequency / 1000 : long.MaxValue;
    private readonly long _everyRecords = everyRecords ?? long.MaxValue;
    private bool _open;
    private long _records;
    private long _beganTicks;

    /// <summary>Flush + EndTxn: how long the sender stops for a commit.</summary>
    public LatencyHistogram Whole { get; } = new();

    /// <summary>CommitTransaction after the flush: the EndTxn round trip.</summary>
    public LatencyHistogram EndTxn { get; } = new();

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

        var start = Meter.Now();
        var left = producer.Flush(timeout);
        if (left > 0)
        {
            throw new InvalidOperationException($"{left} records of the transaction still undelivered after {timeout.TotalMilliseconds} ms");
        }

        var flushed = Meter.Now();
        producer.CommitTransaction(timeout);
        var end = Meter.Now();
        _open = false;
        Whole.Record(Meter.Micros(start, end));
        EndTxn.Record(Meter.Micros(flushed, end));
    }

    /// <summary>Writes the commit count and both latencies.</summary>
    public void WriteSummary(TextWriter output)
    {
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{Whole.Count} transactions committed"));
        Write(output, "commit (flush + EndTxn)", Whole);
        Write(output, "EndTxn", EndTxn);
        output.Flush();
    }

    private static void Write(TextWriter output, string name, LatencyHistogram latency) => output.WriteLine(string.Create(
        CultureInfo.InvariantCulture,
        $"{name} latency ms: avg {latency.MeanMicros / 1000:F3}, p50 {latency.PercentileMicros(0.50) / 1000:F3}, p99 {latency.PercentileMicros(0.99) / 1000:F3}, max {latency.MaxMicros / 1000.0:F3}"));
}
