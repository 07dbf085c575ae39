using System.Buffers.Binary;
using Confluent.Kafka;

namespace Moldau.Perf;

/// <summary>
/// e2e: a producer thread sends N records whose first 8 bytes are the send time (this process's
/// monotonic clock), and the consumer on the calling thread, assigned at the end of every
/// partition before the first send, measures the time from send to receipt.
/// </summary>
internal static class EndToEndCommand
{
    /// <summary>Runs; returns the exit code.</summary>
    public static async Task<int> RunAsync(PerfOptions options, TextWriter output, TextWriter errors, CancellationToken cancel)
    {
        var records = options.Records!.Value;
        var size = options.RecordSize;
        var failures = new Failures();
        var delivered = 0L;
        using var meter = new Meter("end-to-end", errors);

        // Latency is what is measured here, so records leave at once unless --linger-ms says otherwise.
        using var producer = new ProducerBuilder<Null, byte[]>(Clients.Producer(options, maxInFlight: 100_000, defaultLingerMs: 0))
            .SetErrorHandler(Clients.ErrorHandler(errors, failures))
            .SetLogHandler(Clients.IgnoreLog)
            .Build();
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(Clients.Consumer(options, partitionEof: false))
            .SetErrorHandler(Clients.ErrorHandler(errors, failures))
            .SetLogHandler(Clients.IgnoreLog)
            .Build();
        var partitions = await Clients.EnsureTopicAsync(producer, options, autoCreate: true, errors);
        var timeout = TimeSpan.FromMilliseconds(Math.Min(options.TimeoutMs, 30_000));
        consumer.Assign(Enumerable.Range(0, partitions).Select(p =>
        {
            var tp = new TopicPartition(options.Topic, p);
            return new TopicPartitionOffset(tp, consumer.QueryWatermarkOffsets(tp, timeout).High);
        }));

        Action<DeliveryReport<Null, byte[]>> onDelivery = report =>
        {
            if (report.Error.IsError)
            {
                failures.Add(report.Error.Reason);
            }
            else
            {
                Interlocked.Increment(ref delivered);
            }
        };

        meter.Start();
        var sender = new Thread(() => Send(producer, options, onDelivery, failures, cancel)) { Name = "moldau-perf sender" };
        sender.Start();

        var timedOut = false;
        var lastRecord = Meter.Now();
        while (meter.Records < records && failures.Count == 0 && !cancel.IsCancellationRequested)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(100));
            var now = Meter.Now();
            if (result is null)
            {
                if (Meter.Micros(lastRecord, now) / 1000 >= options.TimeoutMs)
                {
                    timedOut = true;
                    break;
                }

                continue;
            }

            lastRecord = now;
            var value = result.Message.Value;
            if (value is null || value.Length < sizeof(long))
            {
                failures.Add($"a record of {value?.Length ?? 0} bytes at {result.TopicPartitionOffset} is not one of ours");
                break;
            }

            meter.Record(value.Length, Meter.Micros(BinaryPrimitives.ReadInt64LittleEndian(value), now));
        }

        meter.Stop();
        sender.Join();
        consumer.Close();
        meter.WriteSummary(output);
        return Outcome.Report(errors, failures, cancel, [
            (timedOut, $"no record for {options.TimeoutMs} ms after {meter.Records} of {records} records ({Interlocked.Read(ref delivered)} acknowledged)"),
        ]);
    }

    private static void Send(IProducer<Null, byte[]> producer, PerfOptions options, Action<DeliveryReport<Null, byte[]>> onDelivery, Failures failures, CancellationToken cancel)
    {
        var payload = Payload.Create(options.RecordSize);
        var message = new Message<Null, byte[]> { Value = payload };
        var throttle = new Throttle(options.Throughput);
        throttle.Start();
        for (long i = 0; i < options.Records && failures.Count == 0 && !cancel.IsCancellationRequested; i++)
        {
            throttle.WaitFor(i);
            while (true)
            {
                // librdkafka copies the value as the record is queued, so the stamp can be rewritten.
                BinaryPrimitives.WriteInt64LittleEndian(payload, Meter.Now());
                try
                {
                    producer.Produce(options.Topic, message, onDelivery);
                    break;
                }
                catch (ProduceException<Null, byte[]> e) when (e.Error.Code == ErrorCode.Local_QueueFull)
                {
                    Thread.Sleep(1);
                }
                catch (KafkaException e)
                {
                    failures.Add(e.Error.Reason);
                    return;
                }
            }
        }

        producer.Flush(TimeSpan.FromMilliseconds(options.TimeoutMs + 5_000L));
    }
}
