using Confluent.Kafka;

namespace Moldau.Perf;

/// <summary>
/// consume: every partition of the topic from its beginning, assigned by hand (no group, nothing
/// committed), until N records or, without N, until every partition has reached its end.
/// </summary>
internal static class ConsumeCommand
{
    /// <summary>Runs; returns the exit code.</summary>
    public static async Task<int> RunAsync(PerfOptions options, TextWriter output, TextWriter errors, CancellationToken cancel)
    {
        var wanted = options.Records;
        var failures = new Failures();
        using var meter = new Meter(latencyName: null, errors);
        using var consumer = new ConsumerBuilder<Ignore, byte[]?>(Clients.Consumer(options, partitionEof: wanted is null))
            .SetErrorHandler(Clients.ErrorHandler(errors, failures))
            .SetLogHandler(Clients.IgnoreLog)
            .Build();
        var partitions = await Clients.EnsureTopicAsync(consumer, options, autoCreate: false, errors);
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(options.Topic, p, Offset.Beginning)));

        var atEnd = new bool[partitions];
        var ended = 0;
        var timedOut = false;
        var lastRecord = Meter.Now();
        meter.Start();
        while (!cancel.IsCancellationRequested && failures.Count == 0)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            if (result is null)
            {
                if (Meter.Micros(lastRecord, Meter.Now()) / 1000 >= options.TimeoutMs)
                {
                    timedOut = true;
                    break;
                }

                continue;
            }

            var partition = result.Partition.Value;
            if (result.IsPartitionEOF)
            {
                if (!atEnd[partition])
                {
                    atEnd[partition] = true;
                    ended++;
                }

                if (ended == partitions)
                {
                    break;
                }

                continue;
            }

            if (atEnd[partition])
            {
                atEnd[partition] = false;
                ended--;
            }

            lastRecord = Meter.Now();
            meter.Record(result.Message.Value?.Length ?? 0);
            if (meter.Records == wanted)
            {
                break;
            }
        }

        meter.Stop();
        consumer.Close();
        meter.WriteSummary(output);
        return Outcome.Report(errors, failures, cancel, [
            (timedOut, $"no record for {options.TimeoutMs} ms after {meter.Records} records" + (wanted is { } n ? $" of {n}" : string.Empty)),
        ]);
    }
}
