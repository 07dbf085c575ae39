namespace Moldau.Broker.Quotas;

/// <summary>
/// A rate per second measured over sampled windows, as Kafka's <c>Rate</c> over a <c>SampledStat</c>
/// of sums measures it for quotas: <c>samples</c> windows of <c>windowMs</c> each (Kafka's
/// quota.window.num = 11, quota.window.size.seconds = 1). A window starts with the first value
/// recorded after the previous one ended; windows older than all of them together are reset. The
/// rate divides the sum of the windows by the time since the oldest window started, but never by
/// less than <c>samples - 1</c> whole windows, so a client's first burst is not measured over a few
/// milliseconds. Not thread-safe: the owner locks.
/// </summary>
internal sealed class QuotaRate
{
    private readonly long[] _start;
    private readonly double[] _value;
    private readonly long _windowMs;
    private int _count;
    private int _current;

    /// <summary>A rate over <paramref name="samples"/> windows of <paramref name="windowMs"/>.</summary>
    public QuotaRate(int samples = QuotaWindows.Samples, long windowMs = QuotaWindows.WindowMs)
    {
        _start = new long[samples];
        _value = new double[samples];
        _windowMs = windowMs;
    }

    /// <summary>Adds <paramref name="value"/> at <paramref name="nowMs"/> (negative: takes back what was recorded).</summary>
    public void Record(double value, long nowMs)
    {
        var current = Current(nowMs);
        if (nowMs - _start[current] >= _windowMs)
        {
            // The current window is complete: the next one (a new one, or the oldest reused) starts now.
            _current = (_current + 1) % _start.Length;
            if (_current >= _count)
            {
                _count = _current + 1;
            }

            _start[_current] = nowMs;
            _value[_current] = 0;
            current = _current;
        }

        _value[current] += value;
    }

    /// <summary>The rate per second at <paramref name="nowMs"/>.</summary>
    public double Measure(long nowMs)
    {
        Purge(nowMs);
        var total = 0.0;
        for (var i = 0; i < _count; i++)
        {
            total += _value[i];
        }

        return total / (WindowSizeMs(nowMs) / 1000.0);
    }

    /// <summary>
    /// The span the rate is measured over at <paramref name="nowMs"/>: from the start of the oldest
    /// window, at least <c>samples - 1</c> whole windows plus what has passed of the current one, at least 1 ms.
    /// </summary>
    public long WindowSizeMs(long nowMs)
    {
        Purge(nowMs);
        var oldest = _start[Current(nowMs)];
        for (var i = 0; i < _count; i++)
        {
            oldest = Math.Min(oldest, _start[i]);
        }

        var elapsed = nowMs - oldest;
        var fullWindows = elapsed / _windowMs;
        var minFullWindows = _start.Length - 1;
        if (fullWindows < minFullWindows)
        {
            elapsed += (minFullWindows - fullWindows) * _windowMs;
        }

        return Math.Max(elapsed, 1);
    }

    /// <summary>
    /// Records <paramref name="value"/> and, when the rate is then above <paramref name="bound"/>,
    /// the time the client must wait for it to come down to the bound: (rate - bound) / bound of
    /// the measured span (Kafka's <c>QuotaUtils.throttleTime</c>); 0 otherwise.
    /// </summary>
    public long RecordAndThrottle(double value, long nowMs, double bound)
    {
        Record(value, nowMs);
        var rate = Measure(nowMs);
        return rate <= bound ? 0 : (long)Math.Round((rate - bound) / bound * WindowSizeMs(nowMs), MidpointRounding.AwayFromZero);
    }

    private int Current(long nowMs)
    {
        if (_count == 0)
        {
            _start[0] = nowMs;
            _value[0] = 0;
            _count = 1;
            _current = 0;
        }

        return _current;
    }

    private void Purge(long nowMs)
    {
        var expireAge = _start.Length * _windowMs;
        for (var i = 0; i < _count; i++)
        {
            if (nowMs - _start[i] >= expireAge)
            {
                _start[i] = nowMs;
                _value[i] = 0;
            }
        }
    }
}

/// <summary>
/// A token bucket for controller_mutation_rate (KIP-599, Kafka's <c>TokenBucket</c>): it holds up
/// to rate × samples × window seconds of tokens (the burst), refills at the rate, and each
/// partition created or deleted takes one. It may go below zero; while it is, the quota is
/// exceeded, for -tokens / rate seconds. Not thread-safe: the owner locks.
/// </summary>
internal sealed class MutationTokenBucket(double rate, long nowMs, int samples = QuotaWindows.Samples, long windowMs = QuotaWindows.WindowMs)
{
    private double _rate = rate;
    private double _tokens = rate * samples * windowMs / 1000.0;
    private long _lastMs = nowMs;

    /// <summary>The most tokens the bucket holds.</summary>
    public double Burst => _rate * samples * windowMs / 1000.0;

    /// <summary>The tokens at <paramref name="nowMs"/> with <paramref name="rate"/> in force (it may have changed).</summary>
    public double Tokens(long nowMs, double rate)
    {
        Refill(nowMs, rate);
        return _tokens;
    }

    /// <summary>Takes <paramref name="permits"/> tokens.</summary>
    public void Record(double permits, long nowMs, double rate)
    {
        Refill(nowMs, rate);
        _tokens = Math.Min(Burst, _tokens - permits);
    }

    /// <summary>How long until the bucket is back at zero, when it is below: -tokens / rate seconds, rounded to ms.</summary>
    public long ThrottleMs(long nowMs, double rate)
    {
        var tokens = Tokens(nowMs, rate);
        return tokens >= 0 ? 0 : (long)Math.Round(-tokens / rate * 1000, MidpointRounding.AwayFromZero);
    }

    private void Refill(long nowMs, double rate)
    {
        _rate = rate;
        _tokens = Math.Min(Burst, _tokens + (rate * Math.Max(0, nowMs - _lastMs) / 1000.0));
        _lastMs = Math.Max(_lastMs, nowMs);
    }
}

/// <summary>Kafka's quota window defaults.</summary>
internal static class QuotaWindows
{
    /// <summary>quota.window.num.</summary>
    public const int Samples = 11;

    /// <summary>quota.window.size.seconds, in ms.</summary>
    public const long WindowMs = 1000;
}
