using Moldau.Broker.Quotas;

namespace Moldau.Broker.Tests.Quotas;

/// <summary>The rate and throttle arithmetic of Kafka's quota windows (11 windows of 1 s), on given instants.</summary>
public sealed class QuotaRateTests
{
    private const long T0 = 1_800_000_000_000;

    [Fact]
    public void AFirstBurstIsMeasuredOverTenWholeWindows()
    {
        var rate = new QuotaRate();
        Assert.Equal(0, rate.RecordAndThrottle(1000, T0, bound: 100));
        Assert.Equal(10_000, rate.WindowSizeMs(T0));
        Assert.Equal(100, rate.Measure(T0), 6);
    }

    [Fact]
    public void TheThrottleIsTheExcessOverTheBoundOfTheMeasuredSpan()
    {
        var rate = new QuotaRate();
        rate.Record(1000, T0);

        // 2000 bytes over 10.5 s is 190.48 B/s; down to 100 B/s takes (190.48 - 100) / 100 of 10.5 s.
        Assert.Equal(9500, rate.RecordAndThrottle(1000, T0 + 500, bound: 100));
        Assert.Equal(10_500, rate.WindowSizeMs(T0 + 500));
    }

    [Fact]
    public void WindowsOlderThanAllElevenAreForgotten()
    {
        var rate = new QuotaRate();
        rate.Record(1_000_000, T0);
        Assert.True(rate.Measure(T0 + 10_999) > 0);
        Assert.Equal(0, rate.Measure(T0 + 11_000));
        Assert.Equal(0, rate.RecordAndThrottle(10, T0 + 11_000, bound: 100));
    }

    [Fact]
    public void ASteadyRateIsMeasuredOverTheWindowsItFills()
    {
        var rate = new QuotaRate();
        for (var t = 0; t <= 30_000; t += 100)
        {
            rate.Record(100, T0 + t);
        }

        // 1000 B/s for 30 s: measured over the last 11 windows, about 1000 B/s.
        Assert.InRange(rate.Measure(T0 + 30_000), 950, 1050);
        Assert.InRange(rate.WindowSizeMs(T0 + 30_000), 10_000, 11_000);
        Assert.Equal(0, rate.RecordAndThrottle(0, T0 + 30_000, bound: 1100));
        Assert.True(rate.RecordAndThrottle(0, T0 + 30_000, bound: 500) > 0);
    }

    [Fact]
    public void TakingBackARecordingUndoesIt()
    {
        var rate = new QuotaRate();
        rate.Record(500, T0);
        rate.Record(5000, T0 + 10);
        rate.Record(-5000, T0 + 10);
        Assert.Equal(50, rate.Measure(T0 + 10) * 10_010 / 10_000, 6);
    }

    [Fact]
    public void TheMutationBucketHoldsElevenSecondsOfRateAndThrottlesItsDebt()
    {
        var bucket = new MutationTokenBucket(rate: 10, nowMs: T0);
        Assert.Equal(110, bucket.Tokens(T0, 10));
        bucket.Record(110, T0, 10);
        Assert.Equal(0, bucket.ThrottleMs(T0, 10));
        bucket.Record(20, T0, 10);
        Assert.Equal(2000, bucket.ThrottleMs(T0, 10));
        Assert.Equal(1000, bucket.ThrottleMs(T0 + 1000, 10));
        Assert.Equal(0, bucket.ThrottleMs(T0 + 2000, 10));

        // It refills to the burst, no further.
        Assert.Equal(110, bucket.Tokens(T0 + 60_000, 10));
    }
}
