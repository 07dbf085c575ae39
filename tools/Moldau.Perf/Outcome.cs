namespace Moldau.Perf;

/// <summary>Turns what went wrong in a run into stderr lines and the exit code.</summary>
internal static class Outcome
{
    /// <summary>0 when nothing failed, 1 otherwise (after saying why on <paramref name="errors"/>).</summary>
    public static int Report(TextWriter errors, Failures failures, CancellationToken cancel, IEnumerable<(bool Failed, string Reason)> checks)
    {
        var code = 0;
        if (failures.Count > 0)
        {
            errors.WriteLine($"moldau-perf: {failures.Count} failures, the first: {failures.First}");
            code = 1;
        }

        foreach (var (failed, reason) in checks)
        {
            if (failed)
            {
                errors.WriteLine("moldau-perf: " + reason);
                code = 1;
            }
        }

        if (cancel.IsCancellationRequested)
        {
            errors.WriteLine("moldau-perf: interrupted");
            code = 1;
        }

        return code;
    }
}
