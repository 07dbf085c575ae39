using System.Collections.Concurrent;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// A consumer group across a broker crash (SIGKILL) and restart: the group coordinator loads the
/// members from the group's record, as Kafka does, so two Confluent.Kafka consumers that go on
/// heartbeating keep their member ids and partitions (no rebalance: no revocation, no new
/// assignment) and their commits succeed.
/// </summary>
public sealed class ConsumerGroupRestartTests
{
    private const int Partitions = 2;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task TwoConsumersCarryOnWithoutARebalanceAcrossABrokerKillAndRestart()
    {
        Librdkafka.EnsureLoaded();
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["group.initial.rebalance.delay.ms"] = "0",
            ["offsets.topic.num.partitions"] = "3",
        });
        const string topic = "restart-input", group = "restart-group";
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = Partitions, ReplicationFactor = 1 }]);
        }

        Produce(broker.BootstrapServers, topic, "before", 20);
        using var a = new Member(broker.BootstrapServers, group, topic, "a");
        using var b = new Member(broker.BootstrapServers, group, topic, "b");
        await WaitUntilAsync(() => a.Consumed("before") + b.Consumed("before") == 20 && a.Assigned.Count == 1 && b.Assigned.Count == 1 && a.CommittedSince(0) && b.CommittedSince(0), "both members assigned a partition, the first records consumed and committed", a, b);
        var (memberA, memberB) = (a.MemberId, b.MemberId);
        var (eventsA, eventsB) = (a.Events.Count, b.Events.Count);
        var assignedA = a.Assigned.ToList();

        await broker.KillAsync();
        await broker.RestartAsync();
        var restartedAt = Environment.TickCount64;

        // The members heartbeat, fetch and commit against the new process with their old ids; a
        // session timeout (6 s) after the restart a member it did not know would be long gone.
        Produce(broker.BootstrapServers, topic, "after", 20);
        await WaitUntilAsync(() => a.Consumed("after") + b.Consumed("after") == 20 && a.CommittedSince(restartedAt) && b.CommittedSince(restartedAt), "the new records consumed and committed after the restart", a, b);
        await Task.Delay(TimeSpan.FromSeconds(8));
        Produce(broker.BootstrapServers, topic, "later", 10);
        var committedAt = Environment.TickCount64;
        await WaitUntilAsync(() => a.Consumed("later") + b.Consumed("later") == 10 && a.CommittedSince(committedAt) && b.CommittedSince(committedAt), "the later records consumed and committed", a, b);

        Assert.True((eventsA, eventsB) == (a.Events.Count, b.Events.Count), $"a rebalance ran after the restart:\n{a.Log}\n{b.Log}");
        Assert.Equal((memberA, memberB), (a.MemberId, b.MemberId));
        Assert.Equal(assignedA, a.Assigned.ToList());
        Assert.DoesNotContain(a.CommitErrors.Concat(b.CommitErrors), e => e is ErrorCode.UnknownMemberId or ErrorCode.IllegalGeneration or ErrorCode.RebalanceInProgress);

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            var described = Assert.Single((await admin.DescribeConsumerGroupsAsync([group])).ConsumerGroupDescriptions);
            Assert.Equal(ConsumerGroupState.Stable, described.State);
            Assert.Equal(new[] { memberA, memberB }.Order(StringComparer.Ordinal), described.Members.Select(m => m.ConsumerId).Order(StringComparer.Ordinal));

            // Every record consumed is committed: the partitions' ends.
            var offsets = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]);
            Assert.Equal(50, Assert.Single(offsets).Partitions.Sum(p => p.Offset.Value));
        }
    }

    private static void Produce(string bootstrap, string topic, string prefix, int count)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 2 }).Build();
        for (var i = 0; i < count; i++)
        {
            producer.Produce(new TopicPartition(topic, i % Partitions), new Message<string, string> { Key = $"{prefix}-{i}", Value = prefix });
        }

        Assert.Equal(0, producer.Flush(Timeout));
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what, Member a, Member b)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for: {what}\n{a.Log}\n{b.Log}");
            await Task.Delay(100);
        }
    }

    /// <summary>A consumer on a thread of its own: it polls, commits what it consumed after each record, and notes its rebalance callbacks.</summary>
    private sealed class Member : IDisposable
    {
        private readonly IConsumer<string, string> _consumer;
        private readonly Thread _thread;
        private readonly CancellationTokenSource _stop = new();
        private readonly ConcurrentDictionary<string, int> _consumed = new();
        private readonly ConcurrentQueue<string> _log = new();
        private long _lastCommit = -1;

        public Member(string bootstrap, string group, string topic, string name)
        {
            _consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
            {
                BootstrapServers = bootstrap,
                GroupId = group,
                ClientId = name,
                AutoOffsetReset = AutoOffsetReset.Earliest,
                EnableAutoCommit = false,
                SessionTimeoutMs = 6000,
                HeartbeatIntervalMs = 500,
                PartitionAssignmentStrategy = PartitionAssignmentStrategy.Range,
            })
            .SetPartitionsAssignedHandler((_, assigned) =>
            {
                Events.Enqueue("assigned " + string.Join(",", assigned));
                Assigned = [.. assigned];
            })
            .SetPartitionsRevokedHandler((_, revoked) => Events.Enqueue("revoked " + string.Join(",", revoked.Select(r => r.TopicPartition))))
            .SetPartitionsLostHandler((_, lost) => Events.Enqueue("lost " + string.Join(",", lost.Select(r => r.TopicPartition))))
            .Build();
            _consumer.Subscribe(topic);
            _thread = new Thread(Run) { IsBackground = true, Name = "consumer " + name };
            _thread.Start();
        }

        /// <summary>Rebalance callbacks, in order.</summary>
        public ConcurrentQueue<string> Events { get; } = new();

        public List<TopicPartition> Assigned { get; private set; } = [];

        public ConcurrentQueue<ErrorCode> CommitErrors { get; } = new();

        public string MemberId => _consumer.MemberId;

        public string Log => $"{_consumer.Name}: {string.Join(" | ", Events)} | {string.Join(" | ", _log)}";

        public int Consumed(string prefix) => _consumed.GetValueOrDefault(prefix);

        /// <summary>Whether a commit succeeded after <paramref name="tick"/> (Environment.TickCount64).</summary>
        public bool CommittedSince(long tick) => Interlocked.Read(ref _lastCommit) >= tick;

        private void Run()
        {
            var uncommitted = false;
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    if (_consumer.Consume(TimeSpan.FromMilliseconds(100)) is { Message: { } m })
                    {
                        _consumed.AddOrUpdate(m.Value, 1, (_, n) => n + 1);
                        uncommitted = true;
                    }
                    else if (uncommitted)
                    {
                        _consumer.Commit();
                        uncommitted = false;
                        Interlocked.Exchange(ref _lastCommit, Environment.TickCount64);
                    }
                }
                catch (KafkaException e)
                {
                    // A commit refused while the broker is down is tried again on the next poll.
                    CommitErrors.Enqueue(e.Error.Code);
                    _log.Enqueue(e.Error.ToString());
                }
            }
        }

        public void Dispose()
        {
            _stop.Cancel();
            _thread.Join();
            _consumer.Close();
            _consumer.Dispose();
        }
    }
}
