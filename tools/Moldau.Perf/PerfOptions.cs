using System.Globalization;
using Confluent.Kafka;

namespace Moldau.Perf;

/// <summary>A command line that cannot be run; the message says why.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The parsed command line of one run.</summary>
internal sealed class PerfOptions
{
    /// <summary>produce, consume or e2e.</summary>
    public required string Command { get; init; }

    /// <summary>host:port[,host:port...].</summary>
    public required string Bootstrap { get; init; }

    /// <summary>The topic.</summary>
    public required string Topic { get; init; }

    /// <summary>Records to send or read; null for consume means "everything there is now".</summary>
    public long? Records { get; init; }

    /// <summary>Value size in bytes.</summary>
    public int RecordSize { get; init; }

    /// <summary>Records per second to aim at; -1 for as fast as possible.</summary>
    public double Throughput { get; init; } = -1;

    /// <summary>The producer's acks.</summary>
    public Acks Acks { get; init; } = Acks.All;

    /// <summary>linger.ms when given.</summary>
    public int? LingerMs { get; init; }

    /// <summary>batch.size in bytes when given.</summary>
    public int? BatchSize { get; init; }

    /// <summary>compression.type.</summary>
    public CompressionType Compression { get; init; } = CompressionType.None;

    /// <summary>Partitions for a topic that does not exist yet (produce creates it).</summary>
    public int? Partitions { get; init; }

    /// <summary>Delivery timeout (produce, e2e) or the longest wait for the next record (consume, e2e).</summary>
    public int TimeoutMs { get; init; } = 30_000;

    /// <summary>produce: enable.idempotence (implied by a transactional id).</summary>
    public bool Idempotence { get; init; }

    /// <summary>produce: the transactional.id; null for a producer without transactions.</summary>
    public string? TransactionalId { get; init; }

    /// <summary>produce with a transactional id: commit after this many records (null: no record limit).</summary>
    public long? CommitRecords { get; init; }

    /// <summary>produce with a transactional id: commit once the transaction is this old (null: no time limit).</summary>
    public int? CommitMs { get; init; }

    /// <summary>produce with a transactional id: after each commit, wait for the markers (last stable offset).</summary>
    public bool ProbeMarkers { get; init; }

    /// <summary>Extra librdkafka properties from --config key=value.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Config { get; init; } = [];

    /// <summary>The usage text.</summary>
    public const string Usage = """
        moldau-perf: load and latency runs against a Kafka-compatible broker (Moldau, or Kafka).

        usage:
          moldau-perf produce --bootstrap HOST:PORT --topic T --records N --record-size S
                              [--throughput R] [--acks all|1|0] [--linger-ms MS] [--batch-size BYTES]
                              [--compression none|gzip|snappy|lz4|zstd] [--partitions P]
                              [--idempotence true|false]
                              [--transactional-id ID [--commit-records N] [--commit-ms MS]
                               [--probe-markers true|false]]
                              [--timeout-ms MS] [--config KEY=VALUE]...
          moldau-perf consume --bootstrap HOST:PORT --topic T [--records N] [--timeout-ms MS]
                              [--config KEY=VALUE]...
          moldau-perf e2e     --bootstrap HOST:PORT --topic T --records N --record-size S
                              [--throughput R] [--acks all|1|0] [--linger-ms MS] [--batch-size BYTES]
                              [--compression none|gzip|snappy|lz4|zstd] [--partitions P]
                              [--timeout-ms MS] [--config KEY=VALUE]...

        produce   sends N records of S bytes; latency is the time from send to acknowledgement.
                  --throughput caps records/s (-1, the default, is as fast as possible);
                  --partitions P creates the topic with P partitions when it does not exist.
                  --timeout-ms is the delivery timeout (default 30000).
                  --idempotence true sets enable.idempotence (acks must be all).
                  --transactional-id sends every record inside a transaction, committed after
                  --commit-records records or once the transaction is --commit-ms old, whichever
                  comes first (at least one of them; the last transaction is committed at the
                  end). A commit flushes the transaction's records, then calls CommitTransaction
                  (EndTxn); the summary adds the commit count and the latency of the whole commit
                  (flush + EndTxn, the sender's pause) and of the EndTxn part alone.
                  --probe-markers true: after each commit the sender also waits until ListOffsets
                  READ_COMMITTED (the last stable offset) of every partition written is past the
                  commit marker, timed from the start of EndTxn ("EndTxn to markers"); this
                  measures the commit, not throughput (the sender waits).
        consume   reads every partition from the beginning, without a consumer group, until N
                  records (or, without --records, until the end of every partition); fails when
                  no record arrives for --timeout-ms (default 30000).
        e2e       produces N records stamped with their send time (S >= 8) and consumes them in the
                  same process; latency is from send to receipt. Reading starts at the end of
                  each partition, so older records in the topic are not counted. linger.ms is 0
                  unless --linger-ms is given. The other options are as for produce.
        --config  passes a librdkafka property to the clients (repeatable).

        Progress goes to stderr about once a second; the summary goes to stdout. Exit code 0 on
        success, 1 when a record failed or a wait timed out, 2 for a bad command line.
        """;

    /// <summary>Parses <paramref name="args"/>; throws <see cref="UsageException"/> on anything wrong.</summary>
    public static PerfOptions Parse(string[] args)
    {
        if (args.Length == 0)
        {
            throw new UsageException("missing subcommand");
        }

        var command = args[0];
        string[] allowed = command switch
        {
            "produce" => ["bootstrap", "topic", "records", "record-size", "throughput", "acks", "linger-ms", "batch-size", "compression", "partitions", "timeout-ms", "config", "idempotence", "transactional-id", "commit-records", "commit-ms", "probe-markers"],
            "consume" => ["bootstrap", "topic", "records", "timeout-ms", "config"],
            "e2e" => ["bootstrap", "topic", "records", "record-size", "throughput", "acks", "linger-ms", "batch-size", "compression", "partitions", "timeout-ms", "config"],
            _ => throw new UsageException($"unknown subcommand '{command}' (expected produce, consume or e2e)"),
        };

        var values = new Dictionary<string, string>();
        var config = new List<KeyValuePair<string, string>>();
        for (var i = 1; i < args.Length; i++)
        {
            var arg = args[i];
            if (!arg.StartsWith("--", StringComparison.Ordinal))
            {
                throw new UsageException($"unexpected argument '{arg}'");
            }

            var name = arg[2..];
            string? value = null;
            var eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }

            if (!allowed.Contains(name))
            {
                throw new UsageException($"'{command}' has no option --{name}");
            }

            if (value is null)
            {
                if (i + 1 >= args.Length)
                {
                    throw new UsageException($"--{name} needs a value");
                }

                value = args[++i];
            }

            if (name == "config")
            {
                var kv = value.IndexOf('=', StringComparison.Ordinal);
                if (kv <= 0)
                {
                    throw new UsageException($"--config expects KEY=VALUE, got '{value}'");
                }

                config.Add(new(value[..kv], value[(kv + 1)..]));
            }
            else if (!values.TryAdd(name, value))
            {
                throw new UsageException($"--{name} given twice");
            }
        }

        var needsSize = command != "consume";
        var options = new PerfOptions
        {
            Command = command,
            Bootstrap = Required(values, "bootstrap"),
            Topic = Required(values, "topic"),
            Records = values.ContainsKey("records") || needsSize ? Long(Required(values, "records"), "records", min: 1) : null,
            RecordSize = needsSize ? (int)Long(Required(values, "record-size"), "record-size", min: command == "e2e" ? 8 : 1, max: 100 * 1024 * 1024) : 0,
            Throughput = values.TryGetValue("throughput", out var t) ? ThroughputFrom(t) : -1,
            Acks = values.TryGetValue("acks", out var a) ? AcksFrom(a) : Acks.All,
            LingerMs = values.TryGetValue("linger-ms", out var l) ? (int)Long(l, "linger-ms", min: 0, max: 900_000) : null,
            BatchSize = values.TryGetValue("batch-size", out var b) ? (int)Long(b, "batch-size", min: 1, max: int.MaxValue) : null,
            Compression = values.TryGetValue("compression", out var c) ? CompressionFrom(c) : CompressionType.None,
            Partitions = values.TryGetValue("partitions", out var p) ? (int)Long(p, "partitions", min: 1, max: 10_000) : null,
            TimeoutMs = values.TryGetValue("timeout-ms", out var ms) ? (int)Long(ms, "timeout-ms", min: 1, max: int.MaxValue) : 30_000,
            Idempotence = values.TryGetValue("idempotence", out var idem) && BoolFrom(idem, "idempotence"),
            TransactionalId = values.TryGetValue("transactional-id", out var txn) ? txn : null,
            CommitRecords = values.TryGetValue("commit-records", out var cr) ? Long(cr, "commit-records", min: 1) : null,
            CommitMs = values.TryGetValue("commit-ms", out var cm) ? (int)Long(cm, "commit-ms", min: 1, max: 3_600_000) : null,
            ProbeMarkers = values.TryGetValue("probe-markers", out var pm) && BoolFrom(pm, "probe-markers"),
            Config = config,
        };
        if (options.TransactionalId is null && (options.CommitRecords is not null || options.CommitMs is not null || options.ProbeMarkers))
        {
            throw new UsageException("--commit-records, --commit-ms and --probe-markers need --transactional-id");
        }

        if (options.TransactionalId is not null && options.CommitRecords is null && options.CommitMs is null)
        {
            throw new UsageException("--transactional-id needs --commit-records, --commit-ms or both");
        }

        if ((options.Idempotence || options.TransactionalId is not null) && options.Acks != Acks.All)
        {
            throw new UsageException("an idempotent or transactional producer needs --acks all");
        }

        return options;
    }

    private static string Required(Dictionary<string, string> values, string name) =>
        values.TryGetValue(name, out var v) && v.Length > 0 ? v : throw new UsageException($"--{name} is required");

    private static long Long(string text, string name, long min, long max = long.MaxValue) =>
        long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : throw new UsageException($"--{name} must be an integer from {min} to {max}, got '{text}'");

    private static bool BoolFrom(string text, string name) => text switch
    {
        "true" => true,
        "false" => false,
        _ => throw new UsageException($"--{name} must be true or false, got '{text}'"),
    };

    private static double ThroughputFrom(string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && (v > 0 || v == -1)
            ? v
            : throw new UsageException($"--throughput must be records/s above 0, or -1 for no limit, got '{text}'");

    private static Acks AcksFrom(string text) => text switch
    {
        "all" or "-1" => Acks.All,
        "1" => Acks.Leader,
        "0" => Acks.None,
        _ => throw new UsageException($"--acks must be all, 1 or 0, got '{text}'"),
    };

    private static CompressionType CompressionFrom(string text) => text switch
    {
        "none" => CompressionType.None,
        "gzip" => CompressionType.Gzip,
        "snappy" => CompressionType.Snappy,
        "lz4" => CompressionType.Lz4,
        "zstd" => CompressionType.Zstd,
        _ => throw new UsageException($"--compression must be none, gzip, snappy, lz4 or zstd, got '{text}'"),
    };
}
