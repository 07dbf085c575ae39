namespace Moldau.Fuzz;

/// <summary>What one input did.</summary>
internal enum Outcome
{
    /// <summary>Read without complaint.</summary>
    Accepted,

    /// <summary>Refused with an expected exception.</summary>
    Rejected,
}

/// <summary>Runs one input through a target and applies the rules every target shares.</summary>
internal static class FuzzRunner
{
    /// <summary>
    /// The most one input may allocate on the fuzzing thread. Inputs are at most a few MB (AFL++
    /// caps them at 1 MB), so anything that allocates this much for one is unbounded in its input
    /// and can be turned into memory exhaustion by a client.
    /// </summary>
    public const long AllocationLimit = 256L * 1024 * 1024;

    /// <summary>Runs <paramref name="input"/>; throws the finding, if any.</summary>
    public static Outcome Execute(FuzzTarget target, ReadOnlyMemory<byte> input) => Execute(target, input, out _);

    /// <summary>Runs <paramref name="input"/>; throws the finding, if any, and says why an input was rejected.</summary>
    public static Outcome Execute(FuzzTarget target, ReadOnlyMemory<byte> input, out Exception? rejection)
    {
        rejection = null;
        var before = GC.GetAllocatedBytesForCurrentThread();
        Outcome outcome;
        try
        {
            target.Run(input);
            outcome = Outcome.Accepted;
        }
        catch (Exception e) when (target.IsExpected(e))
        {
            rejection = e;
            outcome = Outcome.Rejected;
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (allocated > AllocationLimit)
        {
            throw new FuzzFinding($"{target.Name}: allocated {allocated} bytes for an input of {input.Length}");
        }

        return outcome;
    }
}
