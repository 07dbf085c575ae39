using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Moldau.Storage;

/// <summary>
/// The storage engine's instruments, on a meter named <see cref="MeterName"/> shared by every log
/// in the process: how long a log's flush (the fsync of its segments, and of its directory and
/// rolled indexes when due) takes, as Kafka's kafka.log:type=LogFlushStats,name=LogFlushRateAndTimeMs.
/// </summary>
public static class StorageMetrics
{
    /// <summary>The meter's name (an exporter listens to it by name).</summary>
    public const string MeterName = "Moldau.Storage";

    private static readonly Meter Meter = new(MeterName);

    private static readonly Histogram<double> FlushTime = Meter.CreateHistogram(
        "kafka_log_logflushstats_logflushrateandtimems",
        null,
        "Time of one log flush (fsync of a partition's segments), in ms (Kafka's LogFlushRateAndTimeMs).",
        null,
        new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000] });

    /// <summary>A flush that began at <paramref name="started"/> (<see cref="Stopwatch.GetTimestamp"/>) ended now.</summary>
    internal static void Flushed(long started) => FlushTime.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
}
