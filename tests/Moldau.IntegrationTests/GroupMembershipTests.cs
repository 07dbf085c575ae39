using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using KafkaErrorCode = Moldau.Protocol.ErrorCode;

namespace Moldau.IntegrationTests;

/// <summary>
/// Group membership as Kafka's classic group coordinator decides it: pending members that never
/// rejoin (KIP-394) and static members replaced by a newer instance (KIP-345).
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class GroupMembershipTests(SharedBroker shared)
{
    private static readonly byte[] Subscription = [0, 1, 0, 0, 0, 0, 0, 0, 0, 0];

    private static JoinGroupRequest Join(string group, string memberId = "") => new()
    {
        GroupId = group,
        MemberId = memberId,
        SessionTimeoutMs = 6000,

        // The Java client's max.poll.interval.ms: far longer than the test may take.
        RebalanceTimeoutMs = 300000,
        ProtocolType = "consumer",
        Protocols = [new() { Name = "range", Metadata = Subscription }],
    };

    [Fact]
    public async Task APendingMemberThatNeverRejoinsHoldsARebalanceOnlyForItsSessionTimeout()
    {
        var group = "pending-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await using var b = await KafkaTestClient.ConnectAsync(shared.Broker.Port);

        // A forms the group alone and is stable.
        var first = await a.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group));
        Assert.Equal((short)KafkaErrorCode.MemberIdRequired, first.ErrorCode);
        var joined = await a.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, first.MemberId));
        Assert.Equal(0, joined.ErrorCode);
        var synced = await a.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 5, new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            ProtocolType = "consumer",
            ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = [] }],
        });
        Assert.Equal(0, synced.ErrorCode);

        // B's first MEMBER_ID_REQUIRED answer is lost (as when its connection drops): it asks
        // again, gets a second id, and joins with that one. The first id stays pending.
        await using (var lost = await KafkaTestClient.ConnectAsync(shared.Broker.Port))
        {
            var forgotten = await lost.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group));
            Assert.Equal((short)KafkaErrorCode.MemberIdRequired, forgotten.ErrorCode);
        }

        var second = await b.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group));
        Assert.Equal((short)KafkaErrorCode.MemberIdRequired, second.ErrorCode);
        var bJoin = b.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, second.MemberId));

        // A learns of the rebalance from its heartbeat and rejoins.
        var heartbeat = await HeartbeatUntilRebalanceAsync(a, group, joined.GenerationId, joined.MemberId);
        Assert.Equal((short)KafkaErrorCode.RebalanceInProgress, heartbeat);
        var aJoin = a.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, joined.MemberId));

        // Kafka forgets the pending id after the 6 s session timeout of its JoinGroup; the join
        // phase then completes with A and B. (Moldau used to wait 186 s, or the 300 s rebalance timeout.)
        var both = await Task.WhenAll(aJoin, bJoin).WaitAsync(TimeSpan.FromSeconds(40));
        Assert.All(both, r => Assert.Equal(0, r.ErrorCode));
        Assert.Equal(both[0].GenerationId, both[1].GenerationId);
        var leader = both.Single(r => r.MemberId == r.Leader);
        Assert.Equal(new[] { joined.MemberId, second.MemberId }.Order(), leader.Members.Select(m => m.MemberId).Order());
    }

    private static async Task<short> HeartbeatUntilRebalanceAsync(KafkaTestClient client, string group, int generation, string memberId)
    {
        short error = 0;
        for (var i = 0; i < 100 && error == 0; i++)
        {
            var response = await client.SendAsync<HeartbeatResponse>(ApiKey.Heartbeat, 4, new HeartbeatRequest { GroupId = group, GenerationId = generation, MemberId = memberId });
            error = response.ErrorCode;
            if (error == 0)
            {
                await Task.Delay(100);
            }
        }

        return error;
    }

    [Fact]
    public async Task TheOlderOfTwoStaticMembersWithOneInstanceIdIsFencedAndTheNewerKeepsItsPlace()
    {
        Librdkafka.EnsureLoaded();
        var topic = "fence-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = shared.Broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 2, ReplicationFactor = 1 }]);
        }

        ConsumerConfig Config() => new()
        {
            BootstrapServers = shared.Broker.BootstrapServers,
            GroupId = "g-" + topic,
            GroupInstanceId = "the-instance",
            SessionTimeoutMs = 6000,
            HeartbeatIntervalMs = 300,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        };

        var oldErrors = new List<Error>();
        var newErrors = new List<Error>();
        var newRevoked = 0;
        using var older = new ConsumerBuilder<Ignore, Ignore>(Config()).SetErrorHandler((_, e) => { lock (oldErrors) { oldErrors.Add(e); } }).Build();
        using var newer = new ConsumerBuilder<Ignore, Ignore>(Config())
            .SetErrorHandler((_, e) => { lock (newErrors) { newErrors.Add(e); } })
            .SetPartitionsRevokedHandler((_, _) => Interlocked.Increment(ref newRevoked))
            .Build();

        older.Subscribe(topic);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (older.Assignment.Count < 2 && DateTime.UtcNow < deadline)
        {
            older.Consume(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(2, older.Assignment.Count);

        // The newer instance takes the place; the older one's next heartbeat is fenced, which
        // librdkafka raises as a fatal FENCED_INSTANCE_ID error (it rejoins on UNKNOWN_MEMBER_ID).
        newer.Subscribe(topic);
        Error? fatal = null;
        deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (fatal is null && DateTime.UtcNow < deadline)
        {
            newer.Consume(TimeSpan.FromMilliseconds(50));
            try
            {
                older.Consume(TimeSpan.FromMilliseconds(50));
            }
            catch (ConsumeException e) when (e.Error.IsFatal)
            {
                fatal = e.Error;
            }

            lock (oldErrors)
            {
                fatal ??= oldErrors.FirstOrDefault(e => e.IsFatal);
            }
        }

        Assert.NotNull(fatal);
        Assert.Equal(Confluent.Kafka.ErrorCode.FencedInstanceId, fatal.Code);

        // The newer instance keeps both partitions: nobody replaces it again.
        var revokedBefore = Volatile.Read(ref newRevoked);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(8);
        while (DateTime.UtcNow < until)
        {
            newer.Consume(TimeSpan.FromMilliseconds(100));
        }

        Assert.Equal(2, newer.Assignment.Count);
        Assert.Equal(revokedBefore, Volatile.Read(ref newRevoked));
        lock (newErrors)
        {
            Assert.DoesNotContain(newErrors, e => e.IsFatal);
        }

        newer.Close();
    }
}
