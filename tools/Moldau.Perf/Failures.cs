namespace Moldau.Perf;

/// <summary>What went wrong in a run, from any thread: a count and the first reason.</summary>
internal sealed class Failures
{
    private long _count;
    private string? _first;

    /// <summary>How many failures.</summary>
    public long Count => Interlocked.Read(ref _count);

    /// <summary>The first reason, or null.</summary>
    public string? First => Volatile.Read(ref _first);

    /// <summary>Counts one failure.</summary>
    public void Add(string reason)
    {
        Interlocked.CompareExchange(ref _first, reason, null);
        Interlocked.Increment(ref _count);
    }
}
