using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.IntegrationTests;

/// <summary>
/// Confluent.Kafka 2.16 (librdkafka 2.16) with <c>group.protocol=consumer</c> (KIP-848): the
/// broker assigns, members heartbeat with ConsumerGroupHeartbeat v1.
/// </summary>
public sealed class ConsumerProtocolGroupTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, string> Properties = new()
    {
        ["group.consumer.heartbeat.interval.ms"] = "500",
        ["group.consumer.session.timeout.ms"] = "10000",
    };

    private static async Task<string> TopicWithMessagesAsync(string bootstrap, int partitions, int messages, string prefix = "")
    {
        Librdkafka.EnsureLoaded();
        var topic = "kip848-" + prefix + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = partitions, ReplicationFactor = 1 }]);
        }

        await ProduceAsync(bootstrap, topic, 0, messages);
        return topic;
    }

    private static async Task ProduceAsync(string bootstrap, string topic, int from, int count)
    {
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = bootstrap, LingerMs = 2 }).Build();
        for (var i = from; i < from + count; i++)
        {
            producer.Produce(topic, new Message<string, string> { Key = $"k{i}", Value = $"v{i}" });
        }

        producer.Flush(TimeSpan.FromSeconds(30));
        await Task.CompletedTask;
    }

    private static IConsumer<string, string> Consumer(string bootstrap, string group, string? instanceId = null, string? assignor = null)
    {
        var config = new ConsumerConfig
        {
            BootstrapServers = bootstrap,
            GroupId = group,
            GroupInstanceId = instanceId,
            GroupProtocol = GroupProtocol.Consumer,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        };
        if (assignor is not null)
        {
            config.GroupRemoteAssignor = assignor;
        }

        return new ConsumerBuilder<string, string>(config).Build();
    }

    /// <summary>Polls every consumer until <paramref name="done"/>; returns the keys consumed, by consumer.</summary>
    private static List<HashSet<string>> PollUntil(IReadOnlyList<IConsumer<string, string>> consumers, Func<bool> done, TimeSpan within, List<HashSet<string>>? seen = null)
    {
        seen ??= consumers.Select(_ => new HashSet<string>()).ToList();
        var deadline = DateTime.UtcNow + within;
        while (!done() && DateTime.UtcNow < deadline)
        {
            for (var i = 0; i < consumers.Count; i++)
            {
                var r = consumers[i].Consume(TimeSpan.FromMilliseconds(50));
                if (r?.Message is not null)
                {
                    seen[i].Add(r.Message.Key);
                }
            }
        }

        return seen;
    }

    /// <summary>
    /// Whether the consumer has read every assigned partition to its end: its position is the end,
    /// or (nothing read since it got the partition) the committed offset it starts from is.
    /// </summary>
    private static bool CaughtUp(IConsumer<string, string> c) =>
        c.Assignment.Count > 0 && c.Assignment.All(tp =>
        {
            var high = c.QueryWatermarkOffsets(tp, TimeSpan.FromSeconds(5)).High;
            var position = c.Position(tp);
            if (position == Offset.Unset)
            {
                position = c.Committed([tp], TimeSpan.FromSeconds(5)).Single().Offset;
            }

            return high.Value == 0 || position.Value == high.Value;
        });

    [Theory]
    [InlineData("uniform")]
    [InlineData("range")]
    public async Task MembersSplitThePartitionsALeaverHandsOverAndAllResumeFromCommittedOffsets(string assignor)
    {
        await using var broker = await BrokerProcess.StartAsync(properties: Properties);
        var bootstrap = broker.BootstrapServers;
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} started");
        var topic = await TopicWithMessagesAsync(bootstrap, 6, 300);
        var group = "g-" + topic;
        var consumers = Enumerable.Range(0, 3).Select(_ => Consumer(bootstrap, group, assignor: assignor)).ToList();
        try
        {
            consumers.ForEach(c => c.Subscribe(topic));
            bool Split() => consumers.All(c => c.Assignment.Count == 2) && consumers.SelectMany(c => c.Assignment).Distinct().Count() == 6;
            var seen = consumers.Select(_ => new HashSet<string>()).ToList();
            PollUntil(consumers, () => Split() && consumers.All(CaughtUp), TimeSpan.FromSeconds(90), seen);
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} split and read");
            Assert.True(Split(), string.Join(" / ", consumers.Select(c => string.Join(",", c.Assignment.Select(p => p.Partition.Value)))));
            Assert.Equal(300, seen.SelectMany(s => s).Distinct().Count());
            foreach (var c in consumers)
            {
                c.Commit();
            }

            // The first member leaves (ConsumerGroupHeartbeat with epoch -1): its partitions move to
            // the other two, which keep the ones they had all along.
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} committed");
            var kept = consumers.Skip(1).Select(c => c.Assignment.ToHashSet()).ToList();
            consumers[0].Close();
            consumers[0].Dispose();
            var rest = consumers.Skip(1).ToList();
            await ProduceAsync(bootstrap, topic, 300, 60);
            var after = rest.Select(_ => new HashSet<string>()).ToList();
            PollUntil(rest, () => rest.All(c => c.Assignment.Count == 3), TimeSpan.FromSeconds(60), after);
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} moved");
            Assert.Equal(6, rest.SelectMany(c => c.Assignment).Distinct().Count());
            if (assignor == "uniform")
            {
                // uniform is sticky: nothing the others had was taken from them.
                Assert.True(kept[0].IsSubsetOf(rest[0].Assignment) && kept[1].IsSubsetOf(rest[1].Assignment));
            }

            PollUntil(rest, () => rest.All(c => c.Assignment.Count == 3) && rest.All(CaughtUp), TimeSpan.FromSeconds(60), after);
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} caught up after the leave");
            Assert.Equal(60, after.SelectMany(s => s).Distinct().Count(k => int.Parse(k[1..]) >= 300));
            foreach (var c in rest)
            {
                c.Commit();
                c.Close();
            }
        }
        finally
        {
            consumers.ForEach(c => c.Dispose());
        }

        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} closed");

        // Everyone restarts: the new members start exactly at the committed offsets.
        await ProduceAsync(bootstrap, topic, 360, 30);
        var again = Enumerable.Range(0, 2).Select(_ => Consumer(bootstrap, group, assignor: assignor)).ToList();
        try
        {
            again.ForEach(c => c.Subscribe(topic));
            var seen = again.Select(_ => new HashSet<string>()).ToList();
            PollUntil(again, () => again.Sum(c => c.Assignment.Count) == 6 && again.All(CaughtUp), TimeSpan.FromSeconds(60), seen);
            // A partition that moved between the two before a commit is read twice (at least once); nothing before the commits comes back.
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} resumed");
            var keys = seen.SelectMany(s => s).Distinct().Select(k => int.Parse(k[1..])).Order().ToList();
            Assert.Equal(Enumerable.Range(360, 30), keys);
            again.ForEach(c => c.Close());
        }
        finally
        {
            again.ForEach(c => c.Dispose());
        }

        // The admin view: ListGroups shows a consumer-protocol group, DescribeConsumerGroups its state.
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} closed again");
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var listed = await admin.ListConsumerGroupsAsync();
        Assert.Contains(listed.Valid, g => g.GroupId == group);
        var offsets = await admin.ListConsumerGroupOffsetsAsync([new ConsumerGroupTopicPartitions(group, null)]);
        Assert.Equal(6, Assert.Single(offsets).Partitions.Count);
        await admin.DeleteGroupsAsync([group]);
        Assert.DoesNotContain((await admin.ListConsumerGroupsAsync()).Valid, g => g.GroupId == group);
    }

    [Fact]
    public async Task StaticMemberComesBackToItsPartitionsAndRegexPicksUpANewTopic()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: Properties);
        var bootstrap = broker.BootstrapServers;
        var topic = await TopicWithMessagesAsync(bootstrap, 4, 40, "re-");
        var group = "static-" + topic;
        var a = Consumer(bootstrap, group, instanceId: "a");
        var b = Consumer(bootstrap, group, instanceId: "b");
        a.Subscribe(topic);
        b.Subscribe(topic);
        PollUntil([a, b], () => a.Assignment.Count == 2 && b.Assignment.Count == 2, TimeSpan.FromSeconds(60));
        var had = a.Assignment.ToHashSet();
        Assert.Equal(2, had.Count);

        // A static member that closes leaves with epoch -2: its partitions wait for it.
        a.Close();
        a.Dispose();
        var back = Consumer(bootstrap, group, instanceId: "a");
        back.Subscribe(topic);
        PollUntil([back, b], () => back.Assignment.Count == 2, TimeSpan.FromSeconds(60));
        Assert.True(had.SetEquals(back.Assignment));
        back.Close();
        back.Dispose();
        b.Close();
        b.Dispose();

        // A regular expression subscription (ConsumerGroupHeartbeat v1's SubscribedTopicRegex) picks up a topic created later.
        var prefix = "kip848-rx" + Guid.NewGuid().ToString("N")[..6];
        using var r = Consumer(bootstrap, "regex-" + prefix);
        r.Subscribe("^" + prefix + ".*");
        PollUntil([r], () => false, TimeSpan.FromSeconds(3));
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = prefix + "-new", NumPartitions = 2, ReplicationFactor = 1 }]);
        }

        await ProduceAsync(bootstrap, prefix + "-new", 0, 10);
        var got = new List<HashSet<string>> { new() };
        PollUntil([r], () => got[0].Count >= 10, TimeSpan.FromSeconds(60), got);
        Assert.Equal(10, got[0].Count);
        Assert.Equal(2, r.Assignment.Count);
        r.Close();
    }
}
