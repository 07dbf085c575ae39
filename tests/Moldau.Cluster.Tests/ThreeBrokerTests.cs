using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.Cluster.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.Cluster.Tests;

/// <summary>
/// Three real broker processes in cluster mode over one PostgreSQL database and one RGW bucket,
/// driven by an unmodified client (Confluent.Kafka, librdkafka): what one broker takes, another
/// serves, and what a killed broker acknowledged is not lost.
/// </summary>
[Collection(CephRgwCollection.Name)]
public sealed class ThreeBrokerTests(CephRgwServer rgw, PostgresServer postgres, ITestOutputHelper output)
{
    private const int Partitions = 6;

    [Fact]
    public async Task Records_produced_through_one_broker_are_consumed_at_their_offsets_from_another()
    {
        await using var cluster = await ThreeBrokers.StartAsync(rgw, postgres, output);
        var topic = "orders";
        await cluster.CreateTopicAsync(cluster.Brokers[0], topic, Partitions);

        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = cluster.Brokers[0].Bootstrap,
            EnableIdempotence = true,
            LingerMs = 5,
        }).Build();
        var acked = new Dictionary<(int Partition, long Offset), string>();
        var sends = new List<Task<DeliveryResult<string, string>>>();
        for (var i = 0; i < 3000; i++)
        {
            var partition = i % Partitions;
            sends.Add(producer.ProduceAsync(new TopicPartition(topic, partition), new Message<string, string> { Key = $"k{i}", Value = $"v{i}-p{partition}" }));
        }

        foreach (var result in await Task.WhenAll(sends))
        {
            Assert.Equal(PersistenceStatus.Persisted, result.Status);
            Assert.True(acked.TryAdd((result.Partition.Value, result.Offset.Value), result.Message.Value), $"two records acknowledged at {result.TopicPartitionOffset}");
        }

        // Every partition's offsets are 0..n-1: the commit assigned them contiguously.
        foreach (var group in acked.Keys.GroupBy(k => k.Partition))
        {
            Assert.Equal(Enumerable.Range(0, group.Count()).Select(i => (long)i), group.Select(k => k.Offset).Order());
        }

        var consumed = Consume(cluster.Brokers[2].Bootstrap, topic, acked.Count, TimeSpan.FromSeconds(60));
        Assert.Equal(acked.Count, consumed.Count);
        foreach (var (at, value) in acked)
        {
            Assert.True(consumed.TryGetValue(at, out var got), $"offset {at} not consumed");
            Assert.Equal(value, got);
        }

        // kcat (librdkafka's command-line client) reads the same records through broker 2.
        var lines = await KcatAsync(["-b", cluster.Brokers[1].Bootstrap, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p %o %s\n"]);
        var byKcat = lines.Select(l => l.Split(' ')).ToDictionary(f => (int.Parse(f[0], System.Globalization.CultureInfo.InvariantCulture), long.Parse(f[1], System.Globalization.CultureInfo.InvariantCulture)), f => f[2]);
        Assert.Equal(acked, byKcat);

        // Stateless brokers: with all three stopped, a fourth that never saw these records serves
        // them, cold, from PostgreSQL and the object store.
        await cluster.StopAllAsync();
        await using var fresh = await ClusterBroker.StartAsync(4, cluster.ConnectionString, rgw, cluster.Bucket);
        var cold = Consume(fresh.Bootstrap, topic, acked.Count, TimeSpan.FromSeconds(60));
        Assert.Equal(acked.Count, cold.Count);
        foreach (var (at, value) in acked)
        {
            Assert.True(cold.TryGetValue(at, out var got), $"offset {at} not served by the new broker");
            Assert.Equal(value, got);
        }
    }

    [Fact]
    public async Task A_broker_killed_under_load_loses_no_acknowledged_record()
    {
        await using var cluster = await ThreeBrokers.StartAsync(rgw, postgres, output);
        var topic = "payments";
        await cluster.CreateTopicAsync(cluster.Brokers[0], topic, Partitions);

        using var producer = new ProducerBuilder<string, string>(new ProducerConfig
        {
            BootstrapServers = string.Join(',', cluster.Brokers.Select(b => b.Bootstrap)),
            EnableIdempotence = true,
            LingerMs = 5,
            MessageTimeoutMs = 120_000,
        }).Build();
        var acked = new ConcurrentDictionary<(int Partition, long Offset), string>();
        var failed = 0;
        var sends = new List<Task>();
        const int total = 4000;
        for (var i = 0; i < total; i++)
        {
            var value = $"v{i}";
            sends.Add(producer.ProduceAsync(new TopicPartition(topic, i % Partitions), new Message<string, string> { Key = $"k{i}", Value = value }).ContinueWith(t =>
            {
                if (t.IsCompletedSuccessfully)
                {
                    Assert.True(acked.TryAdd((t.Result.Partition.Value, t.Result.Offset.Value), value));
                }
                else
                {
                    Interlocked.Increment(ref failed);
                }
            }, TaskScheduler.Default));
            if (i == total / 3)
            {
                // Under load: a good part acknowledged, more in flight and in the buffers of the broker killed.
                var waitUntil = DateTime.UtcNow + TimeSpan.FromSeconds(30);
                while (acked.Count < total / 6 && DateTime.UtcNow < waitUntil)
                {
                    await Task.Delay(10);
                }

                await cluster.Brokers[1].KillAsync();
                output.WriteLine($"killed broker 2 (kill -9) after {acked.Count} acknowledgements, {i} records sent");
            }

            if (i % 20 == 0)
            {
                await Task.Delay(50); // about 10 s of load, through the lease expiry and the leaders moving
            }
        }

        await Task.WhenAll(sends);
        output.WriteLine($"acknowledged {acked.Count}, failed {failed}");
        Assert.True(acked.Count > total / 2, $"only {acked.Count} of {total} acknowledged");

        var expected = acked.Count;
        var consumed = Consume(cluster.Brokers[2].Bootstrap, topic, expected, TimeSpan.FromSeconds(60), allowMore: true);
        foreach (var (at, value) in acked)
        {
            Assert.True(consumed.TryGetValue(at, out var got), $"acknowledged offset {at} not consumed");
            Assert.Equal(value, got);
        }

        // The idempotent producer's retries through the other brokers stored nothing twice.
        var values = consumed.Values.GroupBy(v => v).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(values.Count == 0, $"stored twice: {string.Join(", ", values.Take(10))}");
    }

    [Fact]
    public async Task A_consumer_group_commits_through_the_hashed_coordinator_and_transactions_are_refused_clearly()
    {
        await using var cluster = await ThreeBrokers.StartAsync(rgw, postgres, output);
        var topic = "events";
        await cluster.CreateTopicAsync(cluster.Brokers[1], topic, 3);
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Brokers[1].Bootstrap, Acks = Acks.All }).Build())
        {
            for (var i = 0; i < 300; i++)
            {
                producer.Produce(new TopicPartition(topic, i % 3), new Message<Null, string> { Value = $"e{i}" });
            }

            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }

        // A group through broker 3: FindCoordinator names the hashed broker, which runs the group.
        static ConsumerConfig Config(string bootstrap) => new()
        {
            BootstrapServers = bootstrap,
            GroupId = "billing",
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        var seen = new HashSet<string>();
        using (var consumer = new ConsumerBuilder<Null, string>(Config(cluster.Brokers[2].Bootstrap)).Build())
        {
            consumer.Subscribe(topic);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (seen.Count < 300 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false } record)
                {
                    seen.Add(record.Message.Value);
                }
            }

            Assert.Equal(300, seen.Count);
            consumer.Commit();
            consumer.Close();
        }

        // The same group from broker 1 finds the offsets committed (100 per partition).
        using (var again = new ConsumerBuilder<Null, string>(Config(cluster.Brokers[0].Bootstrap)).Build())
        {
            var committed = again.Committed(Enumerable.Range(0, 3).Select(p => new TopicPartition(topic, p)), TimeSpan.FromSeconds(30));
            Assert.All(committed, c => Assert.Equal(100, c.Offset.Value));
        }

        // No transaction coordinator over PostgreSQL yet: a fatal error, not an endless retry.
        using var transactional = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = cluster.Brokers[0].Bootstrap, TransactionalId = "tx-1" }).Build();
        var refused = Assert.ThrowsAny<KafkaException>(() => transactional.InitTransactions(TimeSpan.FromSeconds(30)));
        output.WriteLine($"InitTransactions: {refused.Error.Code} {refused.Error.Reason}");
        Assert.Equal(ErrorCode.UnsupportedVersion, refused.Error.Code);
    }

    private static async Task<List<string>> KcatAsync(IReadOnlyList<string> arguments)
    {
        var start = new System.Diagnostics.ProcessStartInfo("kcat") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in arguments)
        {
            start.ArgumentList.Add(a);
        }

        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(timeout.Token);
        Assert.True(process.ExitCode == 0, $"kcat exited with {process.ExitCode}: {await stderr}");
        return [.. (await stdout).Split('\n', StringSplitOptions.RemoveEmptyEntries)];
    }

    private Dictionary<(int Partition, long Offset), string> Consume(string bootstrap, string topic, int expected, TimeSpan timeout, bool allowMore = false)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = "checker",
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Error,
        }).Build();
        consumer.Assign(Enumerable.Range(0, Partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var consumed = new Dictionary<(int Partition, long Offset), string>();
        var deadline = DateTime.UtcNow + timeout;
        var idleUntil = DateTime.MaxValue;
        while (DateTime.UtcNow < deadline && DateTime.UtcNow < idleUntil)
        {
            var record = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (record is null || record.IsPartitionEOF)
            {
                continue;
            }

            Assert.True(consumed.TryAdd((record.Partition.Value, record.Offset.Value), record.Message.Value), $"offset {record.TopicPartitionOffset} consumed twice");
            if (consumed.Count >= expected && idleUntil == DateTime.MaxValue)
            {
                // Read on a little: anything beyond what was acknowledged shows up too.
                idleUntil = allowMore ? DateTime.UtcNow + TimeSpan.FromSeconds(3) : DateTime.UtcNow + TimeSpan.FromSeconds(1);
            }
        }

        output.WriteLine($"consumed {consumed.Count} records from {bootstrap}");
        return consumed;
    }

    /// <summary>Three brokers over a fresh database and bucket.</summary>
    private sealed class ThreeBrokers : IAsyncDisposable
    {
        private readonly TestDatabase _database;
        private readonly ITestOutputHelper _output;

        private ThreeBrokers(TestDatabase database, string bucket, List<ClusterBroker> brokers, ITestOutputHelper output)
        {
            _database = database;
            Bucket = bucket;
            Brokers = brokers;
            _output = output;
        }

        public List<ClusterBroker> Brokers { get; }

        public string Bucket { get; }

        public string ConnectionString => _database.ConnectionString;

        /// <summary>Stops the three brokers (SIGTERM by PID), keeping the database and bucket.</summary>
        public async Task StopAllAsync()
        {
            foreach (var broker in Brokers)
            {
                _output.WriteLine($"---- broker {broker.NodeId} ----\n{broker.Output}");
                await broker.DisposeAsync();
            }

            Brokers.Clear();
        }

        public static async Task<ThreeBrokers> StartAsync(CephRgwServer rgw, PostgresServer postgres, ITestOutputHelper output)
        {
            var database = await postgres.CreateDatabaseAsync();
            var bucket = await rgw.CreateBucketAsync();
            var brokers = new List<ClusterBroker>();
            try
            {
                foreach (var id in new[] { 1, 2, 3 })
                {
                    brokers.Add(await ClusterBroker.StartAsync(id, database.ConnectionString, rgw, bucket));
                }
            }
            catch
            {
                foreach (var b in brokers)
                {
                    await b.DisposeAsync();
                }

                await database.DisposeAsync();
                throw;
            }

            var cluster = new ThreeBrokers(database, bucket, brokers, output);
            await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == 3, "every broker lists three live brokers");
            return cluster;
        }

        public async Task CreateTopicAsync(ClusterBroker through, string topic, int partitions)
        {
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = through.Bootstrap }).Build())
            {
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
            }

            await WaitAsync(admin => admin.GetMetadata(topic, TimeSpan.FromSeconds(5)).Topics.Single().Partitions.Count == partitions, $"every broker knows {topic}");
        }

        /// <summary>Waits until <paramref name="condition"/> holds on every live broker (asked directly).</summary>
        private Task WaitAsync(Func<IAdminClient, bool> condition, string what) =>
            ClusterBroker.WaitOnEachAsync(Brokers, condition, what);

        public async ValueTask DisposeAsync()
        {
            await StopAllAsync();
            await _database.DisposeAsync();
        }
    }
}
