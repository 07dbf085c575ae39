using System.Diagnostics;
using System.Globalization;

namespace Moldau.Perf;

/// <summary>
/// Counts the records of a run as one thread at a time observes them (acknowledged, consumed or received),
/// prints a progress line to stderr about once a second from its own thread, and prints the
/// summary at the end. Recording allocates nothing.
/// </summary>
internal sealed class Meter : IDisposable
{
    private const double BytesPerMb = 1024 * 1024;
    private static readonly double MicrosPerTick = 1_000_000.0 / Stopwatch.Frequency;

    private readonly string _latencyName;
    private readonly TextWriter _progress;
    private readonly ManualResetEventSlim _stop = new();
    private readonly Thread _reporter;
    private long _records;
    private long _bytes;
    private long _startTicks;
    private long _endTicks;

    /// <summary>A meter whose latency (when <paramref name="latencyName"/> is not null) is called that in its output.</summary>
    public Meter(string? latencyName, TextWriter progress)
    {
        _latencyName = latencyName ?? string.Empty;
        Latency = latencyName is null ? null : new LatencyHistogram();
        _progress = progress;
        _reporter = new Thread(Report) { IsBackground = true, Name = "moldau-perf progress" };
    }

    /// <summary>The latencies, or null when this run has none.</summary>
    public LatencyHistogram? Latency { get; }

    /// <summary>Records counted so far.</summary>
    public long Records => Volatile.Read(ref _records);

    /// <summary>Now, in Stopwatch ticks.</summary>
    public static long Now() => Stopwatch.GetTimestamp();

    /// <summary>Microseconds from <paramref name="fromTicks"/> to <paramref name="toTicks"/>.</summary>
    public static long Micros(long fromTicks, long toTicks) => (long)((toTicks - fromTicks) * MicrosPerTick);

    /// <summary>Starts the clock and the progress line.</summary>
    public void Start()
    {
        _startTicks = Now();
        _reporter.Start();
    }

    /// <summary>Counts one record of <paramref name="bytes"/> bytes (called by one thread at a time).</summary>
    public void Record(int bytes)
    {
        Volatile.Write(ref _bytes, _bytes + bytes);
        Volatile.Write(ref _records, _records + 1);
    }

    /// <summary>Counts one record with its latency (called by one thread at a time).</summary>
    public void Record(int bytes, long latencyMicros)
    {
        Latency!.Record(latencyMicros);
        Record(bytes);
    }

    /// <summary>Stops the clock and the progress line.</summary>
    public void Stop()
    {
        _endTicks = Now();
        _stop.Set();
        if (_reporter.IsAlive)
        {
            _reporter.Join();
        }
    }

    /// <summary>Writes the summary: counts and rates, then latency percentiles when there are any.</summary>
    public void WriteSummary(TextWriter output)
    {
        var seconds = Math.Max(Micros(_startTicks, _endTicks), 1) / 1e6;
        var records = Records;
        var bytes = Volatile.Read(ref _bytes);
        output.WriteLine(string.Create(
            CultureInfo.InvariantCulture,
            $"{records} records in {seconds:F3} s: {records / seconds:F1} records/s, {bytes / BytesPerMb / seconds:F2} MB/s"));
        if (Latency is { } latency)
        {
            output.WriteLine(string.Create(
                CultureInfo.InvariantCulture,
                $"{_latencyName} latency ms: avg {latency.MeanMicros / 1000:F3}, p50 {latency.PercentileMicros(0.50) / 1000:F3}, p95 {latency.PercentileMicros(0.95) / 1000:F3}, p99 {latency.PercentileMicros(0.99) / 1000:F3}, p99.9 {latency.PercentileMicros(0.999) / 1000:F3}, max {latency.MaxMicros / 1000.0:F3}"));
        }

        output.Flush();
    }

    private void Report()
    {
        long lastTicks = _startTicks, lastRecords = 0, lastBytes = 0;
        while (!_stop.Wait(TimeSpan.FromSeconds(1)))
        {
            var now = Now();
            var records = Records;
            var bytes = Volatile.Read(ref _bytes);
            var seconds = Math.Max(Micros(lastTicks, now), 1) / 1e6;
            var line = string.Create(
                CultureInfo.InvariantCulture,
                $"{records} records, {(records - lastRecords) / seconds:F1} records/s, {(bytes - lastBytes) / BytesPerMb / seconds:F2} MB/s");
            if (Latency is { } latency)
            {
                line += string.Create(CultureInfo.InvariantCulture, $", {_latencyName} latency avg {latency.MeanMicros / 1000:F3} ms, max {latency.MaxMicros / 1000.0:F3} ms");
            }

            _progress.WriteLine(line);
            (lastTicks, lastRecords, lastBytes) = (now, records, bytes);
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _stop.Dispose();
}
