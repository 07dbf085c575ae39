using Confluent.Kafka;
using Confluent.Kafka.Admin;

namespace Moldau.Perf;

/// <summary>Client configuration and topic set-up shared by the subcommands.</summary>
internal static class Clients
{
    /// <summary>Confluent.Kafka's switch for its delivery-report thread; "false" leaves polling to the application.</summary>
    public const string BackgroundPoll = "dotnet.producer.enable.background.poll";

    /// <summary>The producer configuration for <paramref name="options"/>.</summary>
    public static ProducerConfig Producer(PerfOptions options, int maxInFlight, int? defaultLingerMs = null)
    {
        var config = new ProducerConfig
        {
            BootstrapServers = options.Bootstrap,
            ClientId = "moldau-perf",
            Acks = options.Acks,
            CompressionType = options.Compression,
            MessageTimeoutMs = options.TimeoutMs,
            QueueBufferingMaxMessages = maxInFlight,

            // The tool needs only the error and its own bookkeeping, not copies of the message.
            DeliveryReportFields = "none",
        };
        if ((options.LingerMs ?? defaultLingerMs) is { } linger)
        {
            config.LingerMs = linger;
        }

        if (options.BatchSize is { } batch)
        {
            config.BatchSize = batch;
        }

        if (options.Idempotence)
        {
            config.EnableIdempotence = true;
        }

        if (options.TransactionalId is { } transactionalId)
        {
            config.TransactionalId = transactionalId;

            // librdkafka refuses a message timeout above the transaction timeout (default 60 s).
            config.TransactionTimeoutMs = Math.Max(60_000, options.TimeoutMs);

            // The sending thread serves the delivery reports (ProduceCommand): with Confluent.Kafka's
            // background poll thread serving them instead, librdkafka's flush, which every commit
            // makes, waits in 10 ms slices for reports another thread has taken, and a commit costs
            // about 10 ms more in the client alone (measured: commit p50 11 ms against 2.6 ms).
            config.Set(BackgroundPoll, "false");
        }

        Apply(config, options);
        return config;
    }

    /// <summary>The consumer configuration: assigned partitions only, nothing committed.</summary>
    public static ConsumerConfig Consumer(PerfOptions options, bool partitionEof)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = options.Bootstrap,
            ClientId = "moldau-perf",

            // librdkafka wants a group id even when partitions are assigned by hand; none is joined.
            GroupId = "moldau-perf-" + Guid.NewGuid().ToString("N")[..8],
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = partitionEof,
            ConsumeResultFields = "none",
        };
        Apply(config, options);
        return config;
    }

    /// <summary>Drops librdkafka's log lines: the errors among them also reach the error handler.</summary>
    public static void IgnoreLog(IClient client, LogMessage message)
    {
    }

    /// <summary>Prints client errors to stderr; a fatal one also fails the run.</summary>
    public static Action<IClient, Error> ErrorHandler(TextWriter errors, Failures failures) => (_, e) =>
    {
        errors.WriteLine($"moldau-perf: client error: {e.Reason} ({e.Code})");
        if (e.IsFatal)
        {
            failures.Add(e.Reason);
        }
    };

    /// <summary>
    /// The partition count of the topic. When <paramref name="partitions"/> is given and the topic
    /// is missing it is created with that many; otherwise a producer's metadata request lets the
    /// broker create it with its defaults (auto.create.topics.enable) when <paramref name="autoCreate"/>.
    /// </summary>
    public static async Task<int> EnsureTopicAsync(IClient client, PerfOptions options, bool autoCreate, TextWriter errors)
    {
        using var admin = new DependentAdminClientBuilder(client.Handle).Build();
        if (options.Partitions is { } wanted)
        {
            try
            {
                await admin.CreateTopicsAsync([new TopicSpecification { Name = options.Topic, NumPartitions = wanted, ReplicationFactor = -1 }]);
            }
            catch (CreateTopicsException e) when (e.Results.All(r => r.Error.Code == ErrorCode.TopicAlreadyExists))
            {
            }
        }

        var wait = TimeSpan.FromMilliseconds(Math.Min(options.TimeoutMs, 30_000));
        var deadline = DateTime.UtcNow + wait;
        while (true)
        {
            var topic = admin.GetMetadata(options.Topic, wait).Topics.SingleOrDefault(t => t.Topic == options.Topic);
            if (topic is not null && topic.Error.Code == ErrorCode.NoError && topic.Partitions.Count > 0)
            {
                if (options.Partitions is { } p && p != topic.Partitions.Count)
                {
                    errors.WriteLine($"moldau-perf: topic {options.Topic} already exists with {topic.Partitions.Count} partitions, not {p}");
                }

                return topic.Partitions.Count;
            }

            if (!autoCreate || DateTime.UtcNow > deadline)
            {
                throw new KafkaException(topic?.Error ?? new Error(ErrorCode.UnknownTopicOrPart, $"topic {options.Topic} not found"));
            }

            await Task.Delay(100);
        }
    }

    private static void Apply(ClientConfig config, PerfOptions options)
    {
        foreach (var (key, value) in options.Config)
        {
            config.Set(key, value);
        }
    }
}
