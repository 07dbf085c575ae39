using System.Numerics;

namespace Moldau.Perf;

/// <summary>
/// Latencies in microseconds, counted in log-linear buckets: exact below 256 µs, then 128 buckets
/// per power of two (under 0.8% error), so memory is fixed whatever the run's length and
/// recording allocates nothing. One thread records; percentiles are read after the run.
/// </summary>
internal sealed class LatencyHistogram
{
    private const int SubBucketBits = 7;
    private const int SubBuckets = 1 << SubBucketBits;
    private const int Linear = SubBuckets * 2;

    // Values up to 2^62 µs: the linear part, then one row of sub-buckets per power of two above it.
    private readonly long[] _counts = new long[Linear + ((62 - SubBucketBits) * SubBuckets)];
    private long _count;
    private long _sum;
    private long _max;

    /// <summary>How many values were recorded.</summary>
    public long Count => Volatile.Read(ref _count);

    /// <summary>The mean in microseconds (0 when empty). Safe to read while recording.</summary>
    public double MeanMicros
    {
        get
        {
            var count = Volatile.Read(ref _count);
            return count == 0 ? 0 : (double)Volatile.Read(ref _sum) / count;
        }
    }

    /// <summary>The largest value in microseconds. Safe to read while recording.</summary>
    public long MaxMicros => Volatile.Read(ref _max);

    /// <summary>Records one latency.</summary>
    public void Record(long micros)
    {
        if (micros < 0)
        {
            micros = 0;
        }

        _counts[Index(micros)]++;
        Volatile.Write(ref _sum, _sum + micros);
        if (micros > _max)
        {
            Volatile.Write(ref _max, micros);
        }

        Volatile.Write(ref _count, _count + 1);
    }

    /// <summary>The value at quantile <paramref name="q"/> (0..1) in microseconds: the middle of its bucket, never above the maximum.</summary>
    public double PercentileMicros(double q)
    {
        if (_count == 0)
        {
            return 0;
        }

        var rank = Math.Max(1, (long)Math.Ceiling(q * _count));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                var (low, width) = Bucket(i);
                return Math.Min(low + ((width - 1) / 2.0), _max);
            }
        }

        return _max;
    }

    private static int Index(long micros)
    {
        if (micros < Linear)
        {
            return (int)micros;
        }

        var shift = (63 - BitOperations.LeadingZeroCount((ulong)micros)) - SubBucketBits;
        return Linear + ((shift - 1) * SubBuckets) + (int)((micros >> shift) - SubBuckets);
    }

    private static (long Low, long Width) Bucket(int index)
    {
        if (index < Linear)
        {
            return (index, 1);
        }

        var shift = ((index - Linear) / SubBuckets) + 1;
        var sub = ((index - Linear) % SubBuckets) + SubBuckets;
        return ((long)sub << shift, 1L << shift);
    }
}
