using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.Cluster.Tests;

/// <summary>
/// Admin requests in cluster mode through real broker processes and an unmodified client
/// (Confluent.Kafka): DeleteRecords and retention move the log start in PostgreSQL, topic configs
/// live there, and another broker sees both. librdkafka sends DeleteRecords and ListOffsets to a
/// partition's leader, so "through another broker" is made certain by stopping the first: its
/// partitions move to the broker left, which must answer what the first one did.
/// </summary>
[Collection(CephRgwCollection.Name)]
public sealed class ClusterAdminTests(CephRgwServer rgw, PostgresServer postgres, ITestOutputHelper output)
{
    private static readonly Dictionary<string, string> ShortCleanup = new()
    {
        ["moldau.cluster.cleanup.interval.ms"] = "500",
    };

    [Fact]
    public async Task DeleteRecords_through_one_broker_moves_the_earliest_offset_every_broker_serves()
    {
        await using var cluster = await TestCluster.StartAsync(rgw, postgres, output, 2);
        const string topic = "trimmed";
        const int partitions = 4;
        await cluster.CreateTopicAsync(topic, partitions);
        await ProduceAsync(cluster.Brokers[0].Bootstrap, topic, partitions, 100, DateTime.UtcNow);

        using (var admin = Admin(cluster.Brokers[0].Bootstrap))
        {
            var results = await admin.DeleteRecordsAsync([.. Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, 40))]);
            Assert.All(results, r => Assert.Equal(40, r.Offset.Value));

            // Above the high watermark: OFFSET_OUT_OF_RANGE, nothing moves; a lower offset never moves it back.
            var refused = await Assert.ThrowsAsync<DeleteRecordsException>(() => admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 0, 1000)]));
            Assert.Equal(ErrorCode.OffsetOutOfRange, refused.Results.Single().Error.Code);
            var lower = await admin.DeleteRecordsAsync([new TopicPartitionOffset(topic, 1, 10)]);
            Assert.Equal(40, lower.Single().Offset.Value);
        }

        // In PostgreSQL, for every broker.
        await using (var catalog = await ClusterCatalog.OpenAsync(cluster.ConnectionString))
        {
            var id = (await catalog.GetTopicAsync(topic))!.TopicId;
            for (var p = 0; p < partitions; p++)
            {
                Assert.Equal(40, (await catalog.GetPartitionAsync(new TopicIdPartition(id, p)))!.Value.LogStartOffset);
            }
        }

        // Broker 1 goes: broker 2 now leads every partition and answers earliest 40, and a consumer
        // from the beginning gets offsets 40..99.
        await cluster.StopAsync(0);
        await cluster.WaitAsync(admin => admin.GetMetadata(topic, TimeSpan.FromSeconds(5)).Topics.Single().Partitions.All(p => p.Leader == 2), "broker 2 leads every partition");
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = cluster.Brokers[1].Bootstrap, GroupId = "unused" }).Build())
        {
            for (var p = 0; p < partitions; p++)
            {
                var marks = consumer.QueryWatermarkOffsets(new TopicPartition(topic, p), TimeSpan.FromSeconds(10));
                Assert.Equal(40, marks.Low.Value);
                Assert.Equal(100, marks.High.Value);
            }
        }

        var consumed = Consume(cluster.Brokers[1].Bootstrap, topic, partitions, 60 * partitions);
        for (var p = 0; p < partitions; p++)
        {
            Assert.Equal(Enumerable.Range(40, 60).Select(i => (long)i), consumed.Where(c => c.Partition == p).Select(c => c.Offset).Order());
        }
    }

    [Fact]
    public async Task Retention_ms_of_a_topic_drops_old_batches_once_the_clean_up_job_runs()
    {
        await using var cluster = await TestCluster.StartAsync(rgw, postgres, output, 2, ShortCleanup);
        const string topic = "aged";
        await cluster.CreateTopicAsync(topic, 1, new() { ["retention.ms"] = "60000" });

        // Ten records stamped ten minutes ago (one batch), then five of now (another batch).
        await ProduceAsync(cluster.Brokers[0].Bootstrap, topic, 1, 10, DateTime.UtcNow.AddMinutes(-10));
        await ProduceAsync(cluster.Brokers[0].Bootstrap, topic, 1, 5, DateTime.UtcNow);

        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = cluster.Brokers[1].Bootstrap, GroupId = "unused" }).Build())
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            WatermarkOffsets marks;
            while ((marks = consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10))).Low.Value != 10)
            {
                Assert.True(DateTime.UtcNow < deadline, $"earliest offset still {marks.Low} after 30 s\n{cluster.Brokers[0].Output}\n{cluster.Brokers[1].Output}");
                await Task.Delay(250);
            }

            Assert.Equal(15, marks.High.Value);
        }

        var consumed = Consume(cluster.Brokers[1].Bootstrap, topic, 1, 5);
        Assert.Equal(new long[] { 10, 11, 12, 13, 14 }, consumed.Select(c => c.Offset).Order());

        // The young batch stays: more runs drop nothing else.
        await Task.Delay(1500);
        await using var catalog = await ClusterCatalog.OpenAsync(cluster.ConnectionString);
        var id = (await catalog.GetTopicAsync(topic))!.TopicId;
        Assert.Equal(10, (await catalog.GetPartitionAsync(new TopicIdPartition(id, 0)))!.Value.LogStartOffset);
    }

    [Fact]
    public async Task Topic_configs_set_through_one_broker_are_described_by_another()
    {
        await using var cluster = await TestCluster.StartAsync(rgw, postgres, output, 2);
        const string topic = "configured";
        await cluster.CreateTopicAsync(topic, 2, new() { ["retention.ms"] = "3600000", ["cleanup.policy"] = "delete" });
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = topic };

        using (var admin = Admin(cluster.Brokers[0].Bootstrap))
        {
            await admin.IncrementalAlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>>
            {
                [resource] =
                [
                    new ConfigEntry { Name = "max.message.bytes", Value = "200000", IncrementalOperation = AlterConfigOpType.Set },
                    new ConfigEntry { Name = "cleanup.policy", IncrementalOperation = AlterConfigOpType.Delete },
                ],
            });
        }

        // Every broker's image holds what PostgreSQL holds.
        var expected = new Dictionary<string, string> { ["retention.ms"] = "3600000", ["max.message.bytes"] = "200000" };
        await using (var catalog = await ClusterCatalog.OpenAsync(cluster.ConnectionString))
        {
            var id = (await catalog.GetTopicAsync(topic))!.TopicId;
            Assert.Equal(expected, await catalog.GetTopicConfigsAsync(id));
        }

        foreach (var broker in cluster.Brokers)
        {
            await WaitForConfigsAsync(broker, resource, expected);
        }

        // AlterConfigs replaces the whole set, through broker 2 this time; broker 1 sees it.
        using (var admin = Admin(cluster.Brokers[1].Bootstrap))
        {
#pragma warning disable CS0618 // AlterConfigs is deprecated in favour of the incremental form, but clients still send it
            await admin.AlterConfigsAsync(new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = [new ConfigEntry { Name = "retention.bytes", Value = "1048576" }] });
#pragma warning restore CS0618
        }

        expected = new Dictionary<string, string> { ["retention.bytes"] = "1048576" };
        foreach (var broker in cluster.Brokers)
        {
            await WaitForConfigsAsync(broker, resource, expected);
        }

        // Broker 2 left alone (so nothing can be answered by broker 1) still describes them.
        // (Metadata names the lowest live id as controller, where librdkafka sends DescribeConfigs:
        // wait until broker 2 no longer lists broker 1.)
        await cluster.StopAsync(0);
        await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == 1, "broker 2 lists itself alone");
        await WaitForConfigsAsync(cluster.Brokers[1], resource, expected);
    }

    [Fact]
    public async Task Committed_offsets_survive_the_coordinator_broker_killed()
    {
        await using var cluster = await TestCluster.StartAsync(rgw, postgres, output, 2);
        const string topic = "resumed";
        const string group = "survivor";
        await cluster.CreateTopicAsync(topic, 2);
        await ProduceAsync(cluster.Brokers[0].Bootstrap, topic, 2, 50, DateTime.UtcNow);

        // A subscribed consumer (JoinGroup, SyncGroup, OffsetCommit with its generation) commits 30 and 40.
        var both = string.Join(',', cluster.Brokers.Select(b => b.Bootstrap));
        using (var consumer = new ConsumerBuilder<string, string>(GroupConfig(both, group)).Build())
        {
            consumer.Subscribe(topic);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (consumer.Assignment.Count < 2)
            {
                Assert.True(DateTime.UtcNow < deadline, "the consumer got no assignment");
                consumer.Consume(TimeSpan.FromMilliseconds(500));
            }

            consumer.Commit([new TopicPartitionOffset(topic, 0, 30), new TopicPartitionOffset(topic, 1, 40)]);
            consumer.Close();
        }

        int coordinatorId;
        using (var admin = Admin(both))
        {
            coordinatorId = (await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions.Single().Coordinator.Id;
        }

        // kill -9 of the coordinator: its local __consumer_offsets goes with it; the other broker,
        // once the lease expires, coordinates the group and answers the offsets from PostgreSQL.
        var index = cluster.Brokers.ToList().FindIndex(b => b.NodeId == coordinatorId);
        var survivor = cluster.Brokers[1 - index];
        await cluster.KillAsync(index);
        output.WriteLine($"killed coordinator {coordinatorId}; asking broker {survivor.NodeId}");
        await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == 1, "the survivor lists itself alone");

        using (var admin = Admin(survivor.Bootstrap))
        {
            var listed = (await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, [new TopicPartition(topic, 0), new TopicPartition(topic, 1)])])).Single();
            Assert.Equal([30L, 40L], listed.Partitions.OrderBy(p => p.Partition.Value).Select(p => p.Offset.Value).ToArray());
        }

        // The group resumes where it committed.
        using (var consumer = new ConsumerBuilder<string, string>(GroupConfig(survivor.Bootstrap, group)).Build())
        {
            consumer.Subscribe(topic);
            var first = new Dictionary<int, long>();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while (first.Count < 2 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false, Message: not null } r)
                {
                    first.TryAdd(r.Partition.Value, r.Offset.Value);
                }
            }

            Assert.Equal(30, first[0]);
            Assert.Equal(40, first[1]);
            consumer.Close();
        }

        // DeleteGroups removes the stored offsets too: they don't come back from PostgreSQL.
        using (var admin = Admin(survivor.Bootstrap))
        {
            await admin.DeleteGroupsAsync([group]);
            var listed = (await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, [new TopicPartition(topic, 0), new TopicPartition(topic, 1)])])).Single();
            Assert.All(listed.Partitions, p => Assert.Equal(Offset.Unset, p.Offset));
        }
    }

    private static ConsumerConfig GroupConfig(string bootstrap, string group) => new()
    {
        BootstrapServers = bootstrap,
        GroupId = group,
        EnableAutoCommit = false,
        AutoOffsetReset = AutoOffsetReset.Latest, // a missing commit would show: nothing is consumed
    };

    private async Task WaitForConfigsAsync(ClusterBroker broker, ConfigResource resource, IReadOnlyDictionary<string, string> expected)
    {
        using var admin = Admin(broker.Bootstrap);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            var described = (await admin.DescribeConfigsAsync([resource])).Single();
            var overrides = described.Entries.Values
                .Where(e => e.Source == ConfigSource.DynamicTopicConfig)
                .ToDictionary(e => e.Name, e => e.Value);
            if (overrides.Count == expected.Count && expected.All(e => overrides.GetValueOrDefault(e.Key) == e.Value))
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"broker {broker.NodeId} describes {string.Join(", ", overrides.Select(o => $"{o.Key}={o.Value}"))}, expected {string.Join(", ", expected.Select(o => $"{o.Key}={o.Value}"))}");
            }

            await Task.Delay(200);
        }
    }

    private static IAdminClient Admin(string bootstrap) =>
        new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();

    private static async Task ProduceAsync(string bootstrap, string topic, int partitions, int perPartition, DateTime timestamp)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, EnableIdempotence = true, LingerMs = 20 }).Build();
        var sends = new List<Task<DeliveryResult<string, string>>>();
        for (var p = 0; p < partitions; p++)
        {
            for (var i = 0; i < perPartition; i++)
            {
                sends.Add(producer.ProduceAsync(new TopicPartition(topic, p), new Message<string, string> { Key = $"k{i}", Value = $"v{i}", Timestamp = new Timestamp(timestamp, TimestampType.CreateTime) }));
            }
        }

        await Task.WhenAll(sends);
        producer.Flush(TimeSpan.FromSeconds(10));
    }

    private static List<(int Partition, long Offset)> Consume(string bootstrap, string topic, int partitions, int expected)
    {
        using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = $"reader-{Guid.NewGuid():N}",
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build();
        consumer.Assign(Enumerable.Range(0, partitions).Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var got = new List<(int, long)>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (got.Count < expected && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(500)) is { IsPartitionEOF: false, Message: not null } r)
            {
                got.Add((r.Partition.Value, r.Offset.Value));
            }
        }

        return got;
    }

    /// <summary>Broker processes over one fresh database and bucket.</summary>
    private sealed class TestCluster : IAsyncDisposable
    {
        private readonly TestDatabase _database;
        private readonly ITestOutputHelper _output;
        private readonly List<ClusterBroker> _stopped = [];
        private readonly List<ClusterBroker> _killed = [];

        private TestCluster(TestDatabase database, List<ClusterBroker> brokers, ITestOutputHelper output)
        {
            _database = database;
            All = brokers;
            _output = output;
        }

        /// <summary>The brokers started (node ids 1..n), stopped ones included.</summary>
        public List<ClusterBroker> All { get; }

        public IReadOnlyList<ClusterBroker> Brokers => All;

        public string ConnectionString => _database.ConnectionString;

        public static async Task<TestCluster> StartAsync(CephRgwServer rgw, PostgresServer postgres, ITestOutputHelper output, int count, IReadOnlyDictionary<string, string>? extra = null)
        {
            var database = await postgres.CreateDatabaseAsync();
            var bucket = await rgw.CreateBucketAsync();
            var brokers = new List<ClusterBroker>();
            var cluster = new TestCluster(database, brokers, output);
            try
            {
                for (var id = 1; id <= count; id++)
                {
                    brokers.Add(await ClusterBroker.StartAsync(id, database.ConnectionString, rgw, bucket, extra));
                }

                await cluster.WaitAsync(admin => admin.GetMetadata(TimeSpan.FromSeconds(5)).Brokers.Count == count, $"every broker lists {count} live brokers");
            }
            catch
            {
                await cluster.DisposeAsync();
                throw;
            }

            return cluster;
        }

        /// <summary>Stops broker <paramref name="index"/> (SIGTERM: it releases its lease), keeping its output.</summary>
        public async Task StopAsync(int index)
        {
            var broker = All[index];
            _output.WriteLine($"---- broker {broker.NodeId} (stopped) ----\n{broker.Output}");
            await broker.DisposeAsync();
            _stopped.Add(broker);
        }

        /// <summary>Kills broker <paramref name="index"/> with SIGKILL (its lease lives on until it expires).</summary>
        public async Task KillAsync(int index)
        {
            var broker = All[index];
            await broker.KillAsync();
            _output.WriteLine($"---- broker {broker.NodeId} (killed) ----\n{broker.Output}");
            _killed.Add(broker);
        }

        public async Task CreateTopicAsync(string topic, int partitions, Dictionary<string, string>? configs = null)
        {
            using (var admin = Admin(All[0].Bootstrap))
            {
                await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1, Configs = configs }]);
            }

            await WaitAsync(admin => admin.GetMetadata(topic, TimeSpan.FromSeconds(5)).Topics.Single().Partitions.Count == partitions, $"every broker knows {topic}");
        }

        /// <summary>Waits until <paramref name="condition"/> holds on every running broker (asked directly).</summary>
        public Task WaitAsync(Func<IAdminClient, bool> condition, string what) =>
            ClusterBroker.WaitOnEachAsync(All.Except(_stopped).Except(_killed), condition, what);

        public async ValueTask DisposeAsync()
        {
            foreach (var broker in All.Except(_stopped))
            {
                if (!_killed.Contains(broker))
                {
                    _output.WriteLine($"---- broker {broker.NodeId} ----\n{broker.Output}");
                }

                await broker.DisposeAsync();
            }

            await _database.DisposeAsync();
        }
    }
}
