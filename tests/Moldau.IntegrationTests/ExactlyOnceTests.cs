using System.Diagnostics;
using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.IntegrationTests;

/// <summary>
/// Exactly-once end to end: a read-process-write loop (tests/clients/python/eos_processor.py, librdkafka
/// 2.0.2 through Debian's python3-confluent-kafka, a process of its own) consumes an input topic with
/// read_committed and writes one record per input record to an output topic in transactions that
/// carry the consumed offsets. The broker is killed with SIGKILL at random moments while it works
/// and restarted; the processor is restarted whenever it gives up. At the end the output read with
/// read_committed holds every input record exactly once, in input order per key, and the group's
/// committed offsets are the input's ends. Every third cycle the processor is killed with SIGKILL
/// too, before the broker. MOLDAU_EOS_KILLS sets the number of kills (20 by default).
/// </summary>
public sealed class ExactlyOnceTests(ITestOutputHelper testOutput)
{
    private const int Partitions = 4;
    private const int Keys = 12;
    private const int RecordsPerCycle = 150;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private static string ClientsDir([System.Runtime.CompilerServices.CallerFilePath] string source = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(source)!, "..", "clients"));

    [Fact]
    public async Task ReadProcessWriteLoopWritesEachInputRecordExactlyOnceAcrossBrokerKills()
    {
        Assert.True(File.Exists("/usr/bin/python3"), "Debian's /usr/bin/python3 is required (scripts/test.sh installs python3-confluent-kafka)");
        Librdkafka.EnsureLoaded();
        var kills = int.TryParse(Environment.GetEnvironmentVariable("MOLDAU_EOS_KILLS"), out var n) ? n : 20;
        var random = new Random(1313);
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["num.partitions"] = Partitions.ToString(CultureInfo.InvariantCulture),
            ["group.initial.rebalance.delay.ms"] = "0",
            ["offsets.topic.num.partitions"] = "3",
            ["transaction.state.log.num.partitions"] = "3",
            ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "1000",
        });
        const string input = "eos-input", output = "eos-output", group = "eos-processor";
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([
                new TopicSpecification { Name = input, NumPartitions = Partitions, ReplicationFactor = 1 },
                new TopicSpecification { Name = output, NumPartitions = Partitions, ReplicationFactor = 1 },
            ]);
        }

        var expected = Enumerable.Range(0, Keys).ToDictionary(k => "k" + k, _ => new List<string>());
        var next = 0;
        await using var processor = new Processor(broker.BootstrapServers, input, output, group, "eos-processor-tx");
        processor.Start();
        for (var cycle = 0; cycle <= kills; cycle++)
        {
            // Input, acknowledged before the kill (acks=all, idempotent), RecordsPerCycle a cycle
            // over Keys keys: key k goes to partition k % Partitions, so a key's order is its partition's.
            using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, EnableIdempotence = true, LingerMs = 5 }).Build())
            {
                for (var i = 0; i < RecordsPerCycle; i++, next++)
                {
                    var key = "k" + (next % Keys);
                    var value = $"{key}-{expected[key].Count}";
                    expected[key].Add(value);
                    producer.Produce(new TopicPartition(input, next % Keys % Partitions), new Message<string, string> { Key = key, Value = value });
                }

                Assert.Equal(0, producer.Flush(Timeout));
            }

            if (cycle == kills)
            {
                break;
            }

            // Kill while the processor works: after its first commit since the restart, within the
            // few hundred milliseconds its transactions over this cycle's input take.
            await processor.WaitForCommitAsync(cycle, TimeSpan.FromSeconds(60), broker);
            await Task.Delay(random.Next(0, 400));
            if (cycle % 3 == 1)
            {
                // The processor dies too, mid-transaction or between two: its successor's
                // InitProducerId aborts what it left open and it resumes at the committed offsets.
                processor.Kill();
                await Task.Delay(random.Next(0, 1500));
            }

            await broker.KillAsync();
            processor.NextCycle();
            await Task.Delay(random.Next(0, 500));
            await broker.RestartAsync();
        }

        var total = expected.Values.Sum(v => v.Count);
        await WaitForOutputAsync(broker.BootstrapServers, output, total, TimeSpan.FromSeconds(90), processor);
        await processor.DisposeAsync();

        // Everything in order, once: a read_committed consumer over the whole output.
        var read = ReadCommitted(broker.BootstrapServers, output);
        var actual = read.GroupBy(r => r.Key).ToDictionary(g => g.Key, g => g.Select(r => r.Value).ToList());
        foreach (var (key, values) in expected)
        {
            var got = actual.GetValueOrDefault(key) ?? [];
            var firstDifference = Enumerable.Range(0, Math.Min(got.Count, values.Count)).FirstOrDefault(i => got[i] != "out:" + values[i], Math.Min(got.Count, values.Count));
            Assert.True(got.Count == values.Count && firstDifference == values.Count,
                $"key {key}: {got.Count} output records for {values.Count} input; first difference at {firstDifference}: {(firstDifference < got.Count ? got[firstDifference] : "-")} for out:{(firstDifference < values.Count ? values[firstDifference] : "-")}\n{processor.Log}");
        }

        Assert.Equal(total, read.Count);

        // The group's offsets, committed only inside the transactions, are the input's ends.
        using (var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = broker.BootstrapServers, GroupId = group, IsolationLevel = IsolationLevel.ReadCommitted }).Build())
        {
            var partitions = Enumerable.Range(0, Partitions).Select(p => new TopicPartition(input, p)).ToList();
            var committed = consumer.Committed(partitions, Timeout);
            foreach (var tp in committed)
            {
                Assert.Equal(consumer.QueryWatermarkOffsets(tp.TopicPartition, Timeout).High.Value, tp.Offset.Value);
            }
        }

        var log = processor.Log;
        testOutput.WriteLine($"{kills} kills, {total} records, {processor.Commits} commits, {CountLines(log, "aborted")} aborts, {log.Split('\n').Count(l => l.StartsWith("--- processor ", StringComparison.Ordinal) && l.EndsWith(" started", StringComparison.Ordinal)) - 1} processor restarts");
        testOutput.WriteLine(log);
        Assert.True(processor.Commits >= kills, $"the processor committed only {processor.Commits} transactions\n{processor.Log}");
    }

    private static int CountLines(string log, string prefix) => log.Split('\n').Count(l => l.StartsWith(prefix, StringComparison.Ordinal));

    /// <summary>Waits until a read_committed consumer has seen <paramref name="total"/> output records.</summary>
    private static async Task WaitForOutputAsync(string bootstrap, string topic, int total, TimeSpan timeout, Processor processor)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = bootstrap, GroupId = "eos-watcher", IsolationLevel = IsolationLevel.ReadCommitted, EnableAutoCommit = false }).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var seen = 0;
        var deadline = DateTime.UtcNow + timeout;
        while (seen < total)
        {
            Assert.True(DateTime.UtcNow < deadline, $"only {seen} of {total} output records committed\n{processor.Log}");
            if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { IsPartitionEOF: false })
            {
                seen++;
            }

            await Task.Yield();
        }
    }

    /// <summary>Every committed output record, partition by partition, up to each partition's end.</summary>
    private static List<(string Key, string Value)> ReadCommitted(string bootstrap, string topic)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "eos-reader",
            IsolationLevel = IsolationLevel.ReadCommitted,
            EnableAutoCommit = false,
            EnablePartitionEof = true,
        }).Build();
        var read = new List<(string, string)>();
        for (var p = 0; p < Partitions; p++)
        {
            var tp = new TopicPartition(topic, p);
            consumer.Assign(new TopicPartitionOffset(tp, Offset.Beginning));
            var deadline = DateTime.UtcNow + Timeout;
            while (true)
            {
                Assert.True(DateTime.UtcNow < deadline, $"{tp} was not read to its end");
                var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
                if (r is null)
                {
                    continue;
                }

                if (r.IsPartitionEOF)
                {
                    break;
                }

                read.Add((r.Message.Key, r.Message.Value));
            }

            consumer.Unassign();
        }

        return read;
    }

    /// <summary>The processor script as a child process, started again whenever it exits, until disposed.</summary>
    private sealed class Processor(string bootstrap, string input, string output, string group, string transactionalId) : IAsyncDisposable
    {
        private readonly StringBuilder _log = new();
        private readonly CancellationTokenSource _stop = new();
        private Task? _supervisor;
        private Process? _current;
        private int _cycle;
        private readonly Dictionary<int, int> _commitsPerCycle = [];

        public int Commits { get; private set; }

        public string Log
        {
            get
            {
                lock (_log)
                {
                    return _log.ToString();
                }
            }
        }

        public void Start() => _supervisor = Task.Run(SuperviseAsync);

        public void NextCycle()
        {
            lock (_log)
            {
                _cycle++;
                _log.AppendLine($"--- broker killed, cycle {_cycle}");
            }
        }

        /// <summary>SIGKILL to the processor running now (the supervisor starts the next one).</summary>
        public void Kill()
        {
            lock (_log)
            {
                if (_current is { HasExited: false } process)
                {
                    _log.AppendLine($"--- processor {process.Id} killed");
                    process.Kill();
                }
            }
        }

        public async Task WaitForCommitAsync(int cycle, TimeSpan timeout, BrokerProcess broker)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                lock (_log)
                {
                    if (_commitsPerCycle.GetValueOrDefault(cycle) > 0)
                    {
                        return;
                    }
                }

                Assert.True(DateTime.UtcNow < deadline, $"cycle {cycle}: the processor committed nothing\n{Log}\nbroker:\n{broker.Output[^Math.Min(broker.Output.Length, 4000)..]}");
                await Task.Delay(20);
            }
        }

        private async Task SuperviseAsync()
        {
            while (!_stop.IsCancellationRequested)
            {
                var start = new ProcessStartInfo("/usr/bin/python3")
                {
                    RedirectStandardOutput = true,
                    RedirectStandardError = true,
                    UseShellExecute = false,
                };
                foreach (var a in new[] { Path.Combine(ClientsDir(), "python", "eos_processor.py"), bootstrap, input, output, group, transactionalId })
                {
                    start.ArgumentList.Add(a);
                }

                using var process = new Process { StartInfo = start };
                process.OutputDataReceived += (_, e) => OnLine(e.Data);
                process.ErrorDataReceived += (_, e) => OnLine(e.Data is null ? null : "stderr: " + e.Data);
                process.Start();
                process.BeginOutputReadLine();
                process.BeginErrorReadLine();
                lock (_log)
                {
                    _current = process;
                }

                OnLine($"--- processor {process.Id} started");

                try
                {
                    await process.WaitForExitAsync(_stop.Token);
                    process.WaitForExit();
                    lock (_log)
                    {
                        _current = null;
                    }

                    OnLine($"--- processor {process.Id} exited {process.ExitCode}");
                    await Task.Delay(200, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    // Only the processor this test started, by its own handle.
                    if (!process.HasExited)
                    {
                        process.Kill();
                        await process.WaitForExitAsync();
                    }

                    break;
                }
            }
        }

        private void OnLine(string? line)
        {
            if (line is null)
            {
                return;
            }

            lock (_log)
            {
                if (line.StartsWith("committed ", StringComparison.Ordinal))
                {
                    Commits++;
                    _commitsPerCycle[_cycle] = _commitsPerCycle.GetValueOrDefault(_cycle) + 1;
                }

                // librdkafka's own complaints while the broker is down are many and alike: keep the rest.
                if (!line.StartsWith("stderr: %", StringComparison.Ordinal))
                {
                    _log.AppendLine(line);
                }
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            if (_supervisor is not null)
            {
                await _supervisor;
            }
        }
    }
}
