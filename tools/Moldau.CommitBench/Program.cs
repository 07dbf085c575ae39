using System.Diagnostics;
using System.Globalization;
using Moldau.Cluster.Catalog;
using Moldau.Protocol;

// moldau-commitbench: K committers (one per simulated broker, each with its own lease) commit
// objects as fast as they can for a while; each object holds one batch for each of P partitions,
// drawn at random from a topic of N partitions. Prints commits/s, batches/s and the commit latency
// p50/p99/max. The catalog's tables are created in the database given (use a scratch database).

const string Usage = """
    usage: moldau-commitbench --connection <npgsql connection string> [--committers K] [--partitions P]
                              [--topic-partitions N] [--seconds S] [--warmup-seconds W]
      K concurrent committers (default 4), each commit touching P partitions (default 8) of a topic
      of N partitions (default K*P), for S seconds (default 20) after W seconds of warm-up (default 3).
    """;

string? connection = null;
int committers = 4, partitions = 8, topicPartitions = -1, seconds = 20, warmup = 3;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        int Int() => int.Parse(Next(), NumberStyles.None, CultureInfo.InvariantCulture);
        switch (args[i])
        {
            case "--connection": connection = Next(); break;
            case "--committers": committers = Int(); break;
            case "--partitions": partitions = Int(); break;
            case "--topic-partitions": topicPartitions = Int(); break;
            case "--seconds": seconds = Int(); break;
            case "--warmup-seconds": warmup = Int(); break;
            default: throw new ArgumentException($"unknown argument {args[i]}");
        }
    }

    if (connection is null || committers < 1 || partitions < 1 || seconds < 1)
    {
        throw new ArgumentException("--connection is required; counts must be positive");
    }
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException)
{
    Console.Error.WriteLine($"moldau-commitbench: {e.Message}");
    Console.Error.WriteLine(Usage);
    return 2;
}

if (topicPartitions < 0)
{
    topicPartitions = committers * partitions;
}

if (topicPartitions < partitions)
{
    Console.Error.WriteLine("moldau-commitbench: --topic-partitions must be at least --partitions");
    return 2;
}

await using var catalog = await ClusterCatalog.OpenAsync(connection);
var topic = await catalog.CreateTopicAsync($"commitbench-{Guid.NewGuid():N}", topicPartitions);
var leases = new BrokerLease[committers];
for (var k = 0; k < committers; k++)
{
    var id = 10_000 + Random.Shared.Next(1_000_000);
    leases[k] = await catalog.RegisterBrokerAsync(
        new BrokerRegistration(id, Guid.NewGuid(), null, [new BrokerEndpoint("PLAINTEXT", "127.0.0.1", 9092, "PLAINTEXT")]), TimeSpan.FromHours(1));
}

var measureFrom = Stopwatch.GetTimestamp() + (long)(warmup * (double)Stopwatch.Frequency);
var measureTo = measureFrom + (long)(seconds * (double)Stopwatch.Frequency);
var results = await Task.WhenAll(Enumerable.Range(0, committers).Select(k => Task.Run(async () =>
{
    var random = new Random(k);
    var latencies = new List<double>();
    var chosen = new HashSet<int>();
    while (true)
    {
        var start = Stopwatch.GetTimestamp();
        if (start >= measureTo)
        {
            return latencies;
        }

        chosen.Clear();
        while (chosen.Count < partitions)
        {
            chosen.Add(random.Next(topicPartitions));
        }

        // One 1 KiB batch per partition, placed one after another in the "object" (nothing is uploaded).
        var batches = chosen.Select((p, i) => new BatchToCommit(topic, p, 1024L * i, 1024, 10, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())).ToArray();
        var result = await catalog.CommitObjectAsync(leases[k], new ObjectCommit($"commitbench/{Guid.NewGuid():N}", 1024L * partitions, batches));
        if (result.Results.Any(r => r.Status != BatchCommitStatus.Appended))
        {
            throw new InvalidOperationException("a batch was not appended");
        }

        if (start >= measureFrom)
        {
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }
})));

var all = results.SelectMany(l => l).Order().ToArray();
if (all.Length == 0)
{
    Console.Error.WriteLine("moldau-commitbench: no commit finished in the measured window");
    return 1;
}

double Pct(double p) => all[Math.Min(all.Length - 1, (int)Math.Ceiling(p * all.Length) - 1)];
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"committers={committers} partitions/commit={partitions} topic-partitions={topicPartitions} seconds={seconds}: " +
    $"{all.Length / (double)seconds:F0} commits/s, {all.Length * (double)partitions / seconds:F0} batches/s, " +
    $"latency p50 {Pct(0.50):F2} ms, p99 {Pct(0.99):F2} ms, max {all[^1]:F2} ms"));
return 0;
