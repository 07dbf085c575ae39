using System.Collections.Concurrent;
using Amazon.S3.Model;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.Cleanup;
using Moldau.Cluster.ObjectStore;
using Moldau.Cluster.Tests.Infrastructure;
using Npgsql;
using Xunit.Abstractions;

namespace Moldau.Cluster.Tests;

/// <summary>
/// Faults under load, each against three real broker processes in cluster mode and an idempotent
/// Confluent.Kafka producer bootstrapped from all three: the object store's gateway stopped and
/// started, PostgreSQL restarted, a broker paused past its lease (SIGSTOP, SIGCONT), a broker
/// killed between upload and commit. Each ends with every acknowledged record read at its offset
/// and no record stored twice.
/// </summary>
[Collection(CephRgwCollection.Name)]
public sealed class ClusterFaultTests(CephRgwServer rgw, PostgresServer postgres, ITestOutputHelper output)
{
    private const int Partitions = 6;

    [Fact]
    public async Task Produce_stalls_while_the_object_store_is_down_and_acknowledges_only_what_it_stored()
    {
        // A gateway of this test's own: stopping it leaves the shared one to the other tests.
        await using var gateway = await rgw.StartGatewayAsync();
        var commitTimeout = new Dictionary<string, string> { ["moldau.cluster.commit.timeout.ms"] = "3000" };
        await using var cluster = await Brokers.StartAsync(rgw, postgres, output, endpoint: gateway.Endpoint, extra: commitTimeout);
        var topic = "rgw-outage";
        await cluster.CreateTopicAsync(topic, Partitions);

        using var load = new Load(cluster.Bootstrap, topic, total: 5000, output);
        var sending = load.RunAsync();
        await load.WaitForAcksAsync(800);

        await gateway.StopAsync();
        var stopped = DateTime.UtcNow;
        output.WriteLine($"RGW stopped after {load.Acked.Count} acknowledgements");
        await Task.Delay(TimeSpan.FromSeconds(9));
        var restarted = DateTime.UtcNow;
        await gateway.StartAsync();
        output.WriteLine($"RGW started again after {(DateTime.UtcNow - stopped).TotalSeconds:F1} s");

        await sending;
        load.Report();

        // An object being uploaded when the gateway died may still have been committed (its PUT
        // landed); past that, nothing can be stored, so nothing is acknowledged.
        var duringOutage = load.AckedBetween(stopped + TimeSpan.FromSeconds(2), restarted);
        Assert.True(duringOutage == 0, $"{duringOutage} records acknowledged while the object store was down");
        Assert.True(load.AckedBetween(restarted, DateTime.UtcNow) > 0, "nothing acknowledged after the object store came back");
        Assert.Equal(0, load.Failed);

        // The producers got the retriable error (the commit timeout is shorter than the outage).
        Assert.Contains(cluster.Members, b => b.Output.Contains("could not be stored and committed", StringComparison.Ordinal));

        // Stored, not just cached: with the three brokers gone, a fresh one reads every
        // acknowledged record from PostgreSQL and the object store (through the shared gateway).
        await cluster.StopAllAsync();
        await using var fresh = await ClusterBroker.StartAsync(4, cluster.ConnectionString, rgw, cluster.Bucket);
        CheckStoredOnce(fresh.Bootstrap, topic, load.Acked);
    }

    [Fact]
    public async Task Produce_recovers_after_PostgreSQL_restarts_under_load()
    {
        var commitTimeout = new Dictionary<string, string> { ["moldau.cluster.commit.timeout.ms"] = "3000" };
        await using var cluster = await Brokers.StartAsync(rgw, postgres, output, extra: commitTimeout);
        var topic = "pg-restart";
        await cluster.CreateTopicAsync(topic, Partitions);

        using var load = new Load(cluster.Bootstrap, topic, total: 5000, output);
        var sending = load.RunAsync();
        await load.WaitForAcksAsync(800);

        await postgres.StopFastAsync();
        var stopped = DateTime.UtcNow;
        output.WriteLine($"PostgreSQL stopped (fast) after {load.Acked.Count} acknowledgements");
        await Task.Delay(TimeSpan.FromSeconds(5));
        var restarted = DateTime.UtcNow;
        await postgres.StartAgainAsync();
        NpgsqlConnection.ClearAllPools(); // this process's own pooled connections died with the server
        output.WriteLine($"PostgreSQL started again after {(DateTime.UtcNow - stopped).TotalSeconds:F1} s");

        await sending;
        load.Report();
        var duringOutage = load.AckedBetween(stopped + TimeSpan.FromSeconds(2), restarted);
        Assert.True(duringOutage == 0, $"{duringOutage} records acknowledged while PostgreSQL was down");
        Assert.True(load.AckedBetween(restarted, DateTime.UtcNow) > 0, "nothing acknowledged after PostgreSQL came back");
        Assert.Equal(0, load.Failed);

        // Recovery: every broker holds a lease again (each lists all three), and each has its
        // LISTEN connection back.
        await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == 3, "every broker lists three live brokers after the restart");
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        long listening;
        while ((listening = await cluster.ListeningSessionsAsync()) < 3 && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        Assert.Equal(3, listening);
        CheckStoredOnce(cluster.Members[2].Bootstrap, topic, load.Acked);
    }

    [Fact]
    public async Task A_broker_paused_past_its_lease_is_fenced_and_serves_again_after_it_resumes()
    {
        await using var cluster = await Brokers.StartAsync(rgw, postgres, output);
        var topic = "paused";
        await cluster.CreateTopicAsync(topic, Partitions);

        // The broker leading the most partitions (leaders are a hash of the topic id).
        var paused = cluster.Members.MaxBy(b => cluster.PartitionsLedBy(topic, b.NodeId).Count)!;
        var ledByPaused = cluster.PartitionsLedBy(topic, paused.NodeId);
        output.WriteLine($"broker {paused.NodeId} leads partitions {string.Join(',', ledByPaused)}");
        Assert.NotEmpty(ledByPaused);

        // The request timeout is longer than the lease (6 s), so when the producer gives up on the
        // paused broker and asks for metadata, the others already name new leaders; a timeout
        // shorter than the lease would find the paused broker still leading and reconnect to it
        // (its kernel still accepts connections), waiting for a setup timeout. The periodic refresh
        // helps the same way.
        using var load = new Load(cluster.Bootstrap, topic, total: 10000, output, new ProducerConfig { RequestTimeoutMs = 10_000, TopicMetadataRefreshIntervalMs = 3_000 });
        var sending = load.RunAsync();
        await load.WaitForAcksAsync(800);

        await paused.PauseAsync();
        var stoppedAt = DateTime.UtcNow;
        output.WriteLine($"broker {paused.NodeId} stopped (SIGSTOP) after {load.Acked.Count} acknowledgements");
        await Task.Delay(TimeSpan.FromSeconds(18)); // the lease is 6 s
        var resumedAt = DateTime.UtcNow;
        await paused.ResumeAsync();
        output.WriteLine($"broker {paused.NodeId} resumed (SIGCONT) after {(resumedAt - stoppedAt).TotalSeconds:F1} s; acknowledgements per second on its partitions: {load.Timeline(ledByPaused)}");

        // While it was stopped, its partitions moved to the others and the producer followed.
        var moved = load.AckedBetween(stoppedAt + TimeSpan.FromSeconds(7), resumedAt, ledByPaused);
        Assert.True(moved > 0, $"nothing acknowledged on partitions {string.Join(',', ledByPaused)} while broker {paused.NodeId} was stopped");

        // Fenced: its lease lapsed, so it registers again with a new epoch.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!paused.Output.Contains("lease lapsed; registered again", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        Assert.Contains("lease lapsed; registered again", paused.Output, StringComparison.Ordinal);
        // What it had accepted before the pause (buffered, or still in its sockets) is refused by
        // the lease check, and those producers get a retriable error (they sent again elsewhere).
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!paused.Output.Contains("lease expired or replaced, object", StringComparison.Ordinal) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(200);
        }

        Assert.Contains("lease expired or replaced, object", paused.Output, StringComparison.Ordinal);
        Assert.Contains("answered KAFKA_STORAGE_ERROR", paused.Output, StringComparison.Ordinal);

        await sending;
        load.Report();
        Assert.Equal(0, load.Failed);

        // It serves again: listed by the others, leading partitions, taking produce.
        await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == 3, "every broker lists three live brokers again");
        var ledAgain = cluster.PartitionsLedBy(topic, paused.NodeId);
        Assert.NotEmpty(ledAgain);
        using (var direct = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = paused.Bootstrap, EnableIdempotence = true }).Build())
        {
            var result = await direct.ProduceAsync(new TopicPartition(topic, ledAgain[0]), new Message<string, string> { Key = "after", Value = "after-resume" });
            Assert.Equal(PersistenceStatus.Persisted, result.Status);
            load.Acked[(result.Partition.Value, result.Offset.Value)] = "after-resume";
        }

        CheckStoredOnce(cluster.Members[2].Bootstrap, topic, load.Acked);
    }

    [Fact]
    public async Task A_broker_killed_between_upload_and_commit_leaves_an_orphan_that_is_swept_and_the_retry_lands_once()
    {
        // Broker 1 waits 1.5 s after each upload before committing (a test-only hook), so the kill
        // lands between the two.
        var pause = new Dictionary<string, string> { ["MOLDAU_CLUSTER_TEST_PAUSE_BEFORE_COMMIT_MS"] = "1500" };
        // The surviving brokers' clean-up job sweeps the orphan: uploads older than 8 s with no
        // catalog row, looked for every second.
        var sweep = new Dictionary<string, string>
        {
            ["moldau.cluster.cleanup.interval.ms"] = "500",
            ["moldau.cluster.orphan.sweep.interval.ms"] = "1000",
            ["moldau.cluster.orphan.grace.ms"] = "8000",
        };
        await using var cluster = await Brokers.StartAsync(rgw, postgres, output, extra: sweep, environmentOfFirst: pause);
        var victim = cluster.Members[0];

        // Leaders are a hash of the topic id: take a topic of which broker 1 leads some partitions.
        var topic = "";
        for (var attempt = 0; attempt < 10 && (topic.Length == 0 || cluster.PartitionsLedBy(topic, victim.NodeId).Count == 0); attempt++)
        {
            topic = $"killed-before-commit-{attempt}";
            await cluster.CreateTopicAsync(topic, Partitions);
        }

        Assert.NotEmpty(cluster.PartitionsLedBy(topic, victim.NodeId));

        using var load = new Load(cluster.Bootstrap, topic, total: 5000, output);
        var sending = load.RunAsync();
        await load.WaitForAcksAsync(800);

        // Kill as soon as an upload holding batches is reported, i.e. before its commit.
        var mark = victim.Output.Length;
        string? orphan = null;
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (orphan is null && DateTime.UtcNow < deadline)
        {
            var text = victim.Output;
            var at = text.IndexOf("test pause: object ", mark, StringComparison.Ordinal);
            if (at >= 0)
            {
                await victim.KillAsync();
                orphan = text[(at + "test pause: object ".Length)..].Split(' ')[0];
                break;
            }

            await Task.Delay(5);
        }

        Assert.NotNull(orphan);
        output.WriteLine($"killed broker {victim.NodeId} (kill -9) after uploading {orphan}, {load.Acked.Count} acknowledged");

        // The object is in the bucket but was never committed (checked within the grace, before a
        // sweep may take it): its batches are stored only by the producer's retries through the
        // other brokers.
        using (var s3 = rgw.NewClient())
        {
            var head = await s3.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = cluster.Bucket, Key = orphan });
            Assert.True(head.ContentLength > 0);
        }

        Assert.Equal(0L, await cluster.ScalarAsync("SELECT count(*) FROM moldau_objects WHERE object_key = @key", orphan!));

        await sending;
        load.Report();
        Assert.Equal(0, load.Failed);

        // The surviving brokers' orphan sweep deletes it: gone from the bucket, its catalog row a
        // tombstone that no batch points into.
        using (var store = new S3ObjectStore(rgw.Options(cluster.Bucket)))
        {
            var swept = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (true)
            {
                try
                {
                    await store.GetAsync(orphan!);
                }
                catch (ObjectStoreException e) when (e.Kind == ObjectStoreErrorKind.NotFound)
                {
                    break;
                }

                Assert.True(DateTime.UtcNow < swept, $"the orphan {orphan} was not swept within 90 s");
                await Task.Delay(250);
            }
        }

        Assert.Equal(0L, await cluster.ScalarAsync("SELECT count(*) FROM moldau_batches b JOIN moldau_objects o ON o.object_id = b.object_id WHERE o.object_key = @key", orphan!));

        CheckStoredOnce(cluster.Members[2].Bootstrap, topic, load.Acked);
    }

    /// <summary>Every acknowledged record at its offset with its value; no value stored twice.</summary>
    private void CheckStoredOnce(string bootstrap, string topic, ConcurrentDictionary<(int Partition, long Offset), string> acked)
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
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var idleUntil = DateTime.MaxValue;
        while (DateTime.UtcNow < deadline && DateTime.UtcNow < idleUntil)
        {
            var record = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (record is null || record.IsPartitionEOF)
            {
                continue;
            }

            Assert.True(consumed.TryAdd((record.Partition.Value, record.Offset.Value), record.Message.Value), $"offset {record.TopicPartitionOffset} consumed twice");
            if (consumed.Count >= acked.Count && idleUntil == DateTime.MaxValue)
            {
                idleUntil = DateTime.UtcNow + TimeSpan.FromSeconds(3); // anything beyond what was acknowledged shows up too
            }
        }

        output.WriteLine($"consumed {consumed.Count} records through {bootstrap}, {acked.Count} acknowledged");
        foreach (var (at, value) in acked)
        {
            Assert.True(consumed.TryGetValue(at, out var got), $"acknowledged offset {at} not consumed");
            Assert.Equal(value, got);
        }

        var twice = consumed.Values.GroupBy(v => v).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        Assert.True(twice.Count == 0, $"stored twice: {string.Join(", ", twice.Take(10))}");
    }

    /// <summary>
    /// An idempotent producer sending <c>total</c> records round-robin over the partitions at about
    /// 400 a second, recording when each was acknowledged.
    /// </summary>
    private sealed class Load(string bootstrap, string topic, int total, ITestOutputHelper output, ProducerConfig? config = null) : IDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentQueue<(DateTime At, int Partition)> _ackTimes = new();
        private readonly ConcurrentQueue<string> _errors = new();
        private int _failed;

        public ConcurrentDictionary<(int Partition, long Offset), string> Acked { get; } = new();

        public int Failed => Volatile.Read(ref _failed);

        public async Task RunAsync()
        {
            config ??= new ProducerConfig { RequestTimeoutMs = 5_000 };
            config.BootstrapServers = bootstrap;
            config.EnableIdempotence = true;
            config.LingerMs = 5;
            config.MessageTimeoutMs = 120_000;
            using var producer = new ProducerBuilder<string, string>(config).Build();
            var sends = new List<Task>();
            for (var i = 0; i < total && !_stop.IsCancellationRequested; i++)
            {
                var value = $"v{i}";
                sends.Add(producer.ProduceAsync(new TopicPartition(topic, i % Partitions), new Message<string, string> { Key = $"k{i}", Value = value }).ContinueWith(t =>
                {
                    if (t.IsCompletedSuccessfully)
                    {
                        _ackTimes.Enqueue((DateTime.UtcNow, t.Result.Partition.Value));
                        if (!Acked.TryAdd((t.Result.Partition.Value, t.Result.Offset.Value), value))
                        {
                            _errors.Enqueue($"two records acknowledged at {t.Result.TopicPartitionOffset}");
                            Interlocked.Increment(ref _failed);
                        }
                    }
                    else
                    {
                        _errors.Enqueue(t.Exception?.InnerException?.Message ?? "cancelled");
                        Interlocked.Increment(ref _failed);
                    }
                }, TaskScheduler.Default));
                if (i % 20 == 0)
                {
                    await Task.Delay(50);
                }
            }

            try
            {
                await Task.WhenAll(sends).WaitAsync(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                // The test failed and stops the load: the producer is disposed with records in flight.
            }
        }

        /// <summary>Stops sending (a failed test must not leave a producer retrying against stopped brokers).</summary>
        public void Dispose() => _stop.Cancel();

        /// <summary>Acknowledgements per second of <paramref name="partitions"/>, for the test output.</summary>
        public string Timeline(IReadOnlyCollection<int> partitions)
        {
            var times = _ackTimes.Where(a => partitions.Contains(a.Partition)).Select(a => a.At).Order().ToList();
            if (times.Count == 0)
            {
                return "none";
            }

            var start = times[0];
            return string.Join(' ', times.GroupBy(t => (int)(t - start).TotalSeconds).Select(g => $"{g.Key}s:{g.Count()}"));
        }

        public async Task WaitForAcksAsync(int count)
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (Acked.Count < count)
            {
                Assert.True(DateTime.UtcNow < deadline, $"only {Acked.Count} of {count} acknowledged within 60 s");
                await Task.Delay(10);
            }
        }

        public int AckedBetween(DateTime from, DateTime to, IReadOnlyCollection<int>? partitions = null) =>
            _ackTimes.Count(a => a.At >= from && a.At < to && (partitions is null || partitions.Contains(a.Partition)));

        public void Report()
        {
            output.WriteLine($"acknowledged {Acked.Count} of {total}, failed {Failed}");
            foreach (var error in _errors.Distinct().Take(10))
            {
                output.WriteLine($"  error: {error}");
            }
        }
    }

    /// <summary>Three brokers over a fresh database and bucket.</summary>
    private sealed class Brokers : IAsyncDisposable
    {
        private readonly TestDatabase _database;
        private readonly ITestOutputHelper _output;

        private Brokers(TestDatabase database, string bucket, List<ClusterBroker> members, ITestOutputHelper output)
        {
            _database = database;
            Bucket = bucket;
            Members = members;
            _output = output;
        }

        public List<ClusterBroker> Members { get; }

        public string Bucket { get; }

        public string ConnectionString => _database.ConnectionString;

        public string Bootstrap => string.Join(',', Members.Select(b => b.Bootstrap));

        public static async Task<Brokers> StartAsync(CephRgwServer rgw, PostgresServer postgres, ITestOutputHelper output, string? endpoint = null, IReadOnlyDictionary<string, string>? extra = null, IReadOnlyDictionary<string, string>? environmentOfFirst = null)
        {
            var database = await postgres.CreateDatabaseAsync();
            var bucket = await rgw.CreateBucketAsync();
            var members = new List<ClusterBroker>();
            try
            {
                foreach (var id in new[] { 1, 2, 3 })
                {
                    members.Add(await ClusterBroker.StartAsync(id, database.ConnectionString, rgw, bucket, extra, endpoint, id == 1 ? environmentOfFirst : null));
                }
            }
            catch
            {
                foreach (var b in members)
                {
                    await b.DisposeAsync();
                }

                await database.DisposeAsync();
                throw;
            }

            var cluster = new Brokers(database, bucket, members, output);
            await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == 3, "every broker lists three live brokers");
            return cluster;
        }

        public async Task CreateTopicAsync(string topic, int partitions)
        {
            using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Members[0].Bootstrap }).Build())
            {
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
            }

            await WaitAsync(admin => admin.GetMetadata(topic, TimeSpan.FromSeconds(5)).Topics.Single().Partitions.Count == partitions, $"every broker knows {topic}");
        }

        /// <summary>The partitions of <paramref name="topic"/> whose leader is <paramref name="nodeId"/>, as broker 1 answers.</summary>
        public List<int> PartitionsLedBy(string topic, int nodeId)
        {
            using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Members[0].Bootstrap }).Build();
            return [.. admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Where(p => p.Leader == nodeId).Select(p => p.PartitionId)];
        }

        /// <summary>Sessions of this database whose last statement was a LISTEN (the brokers' commit listeners).</summary>
        public async Task<long> ListeningSessionsAsync()
        {
            var database = new NpgsqlConnectionStringBuilder(ConnectionString).Database;
            return await ScalarAsync("SELECT count(*) FROM pg_stat_activity WHERE datname = @key AND query ILIKE 'LISTEN%'", database!);
        }

        public async Task<long> ScalarAsync(string sql, string key)
        {
            await using var connection = new NpgsqlConnection(ConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            command.Parameters.AddWithValue("key", key);
            return Convert.ToInt64(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
        }

        /// <summary>Waits until <paramref name="condition"/> holds on every live broker (asked directly).</summary>
        public Task WaitAsync(Func<IAdminClient, bool> condition, string what) =>
            ClusterBroker.WaitOnEachAsync(Members, condition, what);

        /// <summary>Stops the brokers (SIGTERM by PID), printing what they logged; keeps database and bucket.</summary>
        public async Task StopAllAsync()
        {
            foreach (var broker in Members)
            {
                _output.WriteLine($"---- broker {broker.NodeId} ----\n{Tail(broker.Output)}");
                await broker.DisposeAsync();
            }

            Members.Clear();
        }

        private static string Tail(string text) => text.Length <= 20_000 ? text : text[^20_000..];

        public async ValueTask DisposeAsync()
        {
            await StopAllAsync();
            await _database.DisposeAsync();
        }
    }
}
