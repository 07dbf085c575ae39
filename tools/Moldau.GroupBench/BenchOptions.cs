namespace Moldau.GroupBench;

/// <summary>The command line of moldau-groupbench.</summary>
internal sealed record BenchOptions
{
    public string Host { get; init; } = "127.0.0.1";

    public int Port { get; init; } = 9092;

    public int Members { get; init; } = 1_000;

    public string Group { get; init; } = $"groupbench-{Guid.NewGuid():N}";

    public int HeartbeatMs { get; init; } = 1_000;

    public int SessionMs { get; init; } = 30_000;

    public int RebalanceMs { get; init; } = 60_000;

    /// <summary>The broker's group.initial.rebalance.delay.ms, subtracted from the join time.</summary>
    public int InitialDelayMs { get; init; } = 3_000;

    public int TimeoutMs { get; init; } = 120_000;

    public const string Usage = """
        usage: moldau-groupbench [--bootstrap host:port] [--members N] [--group id] [--heartbeat-ms ms]
                                 [--session-ms ms] [--rebalance-ms ms] [--initial-delay-ms ms] [--timeout-ms ms]
          N members (one connection each) join one classic group, sync and heartbeat; then one
          member leaves and the rest rebalance. Prints the join time after the initial delay and
          the rebalance time after the leave; exits 1 if any member missed a generation or its
          assignment.
        """;

    public static BenchOptions Parse(string[] args)
    {
        var o = new BenchOptions();
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            o = args[i] switch
            {
                "--bootstrap" => Bootstrap(o, Next()),
                "--members" => o with { Members = int.Parse(Next()) },
                "--group" => o with { Group = Next() },
                "--heartbeat-ms" => o with { HeartbeatMs = int.Parse(Next()) },
                "--session-ms" => o with { SessionMs = int.Parse(Next()) },
                "--rebalance-ms" => o with { RebalanceMs = int.Parse(Next()) },
                "--initial-delay-ms" => o with { InitialDelayMs = int.Parse(Next()) },
                "--timeout-ms" => o with { TimeoutMs = int.Parse(Next()) },
                _ => throw new ArgumentException($"unknown option {args[i]}"),
            };
        }

        return o.Members >= 2 ? o : throw new ArgumentException("--members must be at least 2");
    }

    private static BenchOptions Bootstrap(BenchOptions o, string value)
    {
        var colon = value.LastIndexOf(':');
        return colon < 0 ? o with { Host = value } : o with { Host = value[..colon], Port = int.Parse(value[(colon + 1)..]) };
    }
}
