using Confluent.Kafka;

namespace Moldau.Perf;

/// <summary>
/// produce: N records of S bytes, optionally throttled; latency is from the send call to the
/// delivery report (the broker's acknowledgement, or the send itself for acks=0). With a
/// transactional id every record is sent inside a transaction, committed by <see cref="Commits"/>.
/// </summary>
internal static class ProduceCommand
{
    /// <summary>Runs; returns the exit code.</summary>
    public static async Task<int> RunAsync(PerfOptions options, TextWriter output, TextWriter errors, CancellationToken cancel)
    {
        var records = options.Records!.Value;
        var size = options.RecordSize;

        // In-flight records are bounded by the slots and, for the client, by the same count and by
        // 256 MiB of payload, so large records do not queue gigabytes.
        var inFlight = (int)Math.Clamp(256L * 1024 * 1024 / size, 16, 100_000);
        var failures = new Failures();
        using var meter = new Meter("ack", errors);
        var slots = new DeliverySlots<DeliveryReport<Null, byte[]>>(inFlight, (sentTicks, report) =>
        {
            if (report.Error.IsError)
            {
                failures.Add(report.Error.Reason);
            }
            else
            {
                meter.Record(size, Meter.Micros(sentTicks, Meter.Now()));
            }
        });

        var config = Clients.Producer(options, slots.Size);

        // Without Confluent.Kafka's background poll thread this thread serves the delivery reports:
        // now and then while sending, and whenever it waits for a slot or for queue space.
        var pollsItself = config.Get(Clients.BackgroundPoll) == "false";
        using var producer = new ProducerBuilder<Null, byte[]>(config)
            .SetErrorHandler(Clients.ErrorHandler(errors, failures))
            .SetLogHandler(config.Debug is null ? Clients.IgnoreLog : (_, m) => errors.WriteLine($"{System.Diagnostics.Stopwatch.GetElapsedTime(0).TotalMilliseconds % 1_000_000:F1} {m.Level} {m.Facility} {m.Message}"))
            .Build();
        var partitions = await Clients.EnsureTopicAsync(producer, options, autoCreate: true, errors);
        using var commits = options.TransactionalId is null
            ? null
            : new Commits(producer, options.CommitRecords, options.CommitMs, TimeSpan.FromMilliseconds(options.TimeoutMs));
        commits?.Init();
        if (options.ProbeMarkers)
        {
            commits?.ProbeMarkers(options.Topic, partitions);
        }

        // librdkafka copies the value when the record is queued, so one message serves every send.
        var message = new Message<Null, byte[]> { Value = Payload.Create(size) };
        var throttle = new Throttle(options.Throughput);
        meter.Start();
        throttle.Start();
        long sent = 0;
        for (; sent < records && failures.Count == 0 && !cancel.IsCancellationRequested; sent++)
        {
            throttle.WaitFor(sent);
            if (commits is not null && !Step(commits.BeforeRecord, failures))
            {
                break;
            }

            if (pollsItself && (sent & 1023) == 0)
            {
                producer.Poll(TimeSpan.Zero);
            }

            int slot;
            while (!slots.TryTake(Meter.Now(), out slot))
            {
                Wait(producer, pollsItself);
            }

            while (true)
            {
                try
                {
                    producer.Produce(options.Topic, message, slots.Handlers[slot]);
                    break;
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    Wait(producer, pollsItself);
                }
            }

            if (commits is not null && !Step(commits.AfterRecord, failures))
            {
                sent++;
                break;
            }
        }

        // The last, partly filled transaction is committed too (a failed run leaves it to time out).
        if (commits is not null && failures.Count == 0 && !cancel.IsCancellationRequested)
        {
            Step(commits.Commit, failures);
        }

        var left = producer.Flush(TimeSpan.FromMilliseconds(options.TimeoutMs + 5_000L));
        if (left == 0)
        {
            slots.WaitAllReturned(TimeSpan.FromSeconds(5));
        }

        meter.Stop();
        meter.WriteSummary(output);
        commits?.WriteSummary(output);
        return Outcome.Report(errors, failures, cancel, [
            (left > 0, $"{left} records still undelivered after the timeout"),
            (sent < records && failures.Count == 0 && !cancel.IsCancellationRequested, $"only {sent} of {records} records sent"),
        ]);
    }

    // A millisecond's wait for the client, serving delivery reports meanwhile when no other thread does.
    private static void Wait(IProducer<Null, byte[]> producer, bool pollsItself)
    {
        if (pollsItself)
        {
            producer.Poll(TimeSpan.FromMilliseconds(1));
        }
        else
        {
            Thread.Sleep(1);
        }
    }

    // A transaction call that fails (fenced, timed out, refused) ends the run as a failure.
    private static bool Step(Action action, Failures failures)
    {
        try
        {
            action();
            return true;
        }
        catch (Exception e) when (e is KafkaException or InvalidOperationException)
        {
            failures.Add(e.Message);
            return false;
        }
    }
}
