using System.Diagnostics;

namespace Moldau.Perf;

/// <summary>
/// Holds a sender to a target rate: before record i it sleeps while i records would be ahead of
/// schedule, so the average over the run is the target even though the sleeps are coarse.
/// </summary>
internal sealed class Throttle(double recordsPerSecond)
{
    private long _startTicks;

    /// <summary>Starts the schedule.</summary>
    public void Start() => _startTicks = Stopwatch.GetTimestamp();

    /// <summary>Waits, when needed, until record <paramref name="sent"/> (0-based) is due.</summary>
    public void WaitFor(long sent)
    {
        if (recordsPerSecond <= 0)
        {
            return;
        }

        var dueTicks = _startTicks + (long)(sent / recordsPerSecond * Stopwatch.Frequency);
        var aheadMs = (dueTicks - Stopwatch.GetTimestamp()) * 1000 / Stopwatch.Frequency;
        if (aheadMs >= 1)
        {
            Thread.Sleep((int)Math.Min(aheadMs, int.MaxValue));
        }
    }
}
