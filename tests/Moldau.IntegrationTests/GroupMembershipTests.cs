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

    private static JoinGroupRequest Join(string group, string memberId = "", string? instanceId = null, int sessionTimeoutMs = 6000, int rebalanceTimeoutMs = 300000) => new()
    {
        GroupId = group,
        MemberId = memberId,
        GroupInstanceId = instanceId,
        SessionTimeoutMs = sessionTimeoutMs,

        // By default the Java client's max.poll.interval.ms: far longer than a test may take.
        RebalanceTimeoutMs = rebalanceTimeoutMs,
        ProtocolType = "consumer",
        Protocols = [new() { Name = "range", Metadata = Subscription }],
    };

    /// <summary>A dynamic member's two JoinGroups (KIP-394): the id it is given, then the join with it.</summary>
    private static async Task<string> MemberIdAsync(KafkaTestClient client, string group, int sessionTimeoutMs = 6000)
    {
        var first = await client.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, sessionTimeoutMs: sessionTimeoutMs));
        Assert.Equal((short)KafkaErrorCode.MemberIdRequired, first.ErrorCode);
        return first.MemberId;
    }

    /// <summary>Forms a group of one stable dynamic member on <paramref name="client"/>.</summary>
    private static async Task<JoinGroupResponse> StableMemberAsync(KafkaTestClient client, string group)
    {
        var joined = await client.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, await MemberIdAsync(client, group)));
        Assert.Equal(0, joined.ErrorCode);
        var synced = await client.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 5, new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            ProtocolType = "consumer",
            ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = [] }],
        });
        Assert.Equal(0, synced.ErrorCode);
        return joined;
    }

    [Fact]
    public async Task APendingMemberThatLeavesNoLongerHoldsTheRebalance()
    {
        var group = "pending-leave-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await using var b = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await using var c = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var joined = await StableMemberAsync(a, group);

        // C is given an id (with a long session timeout) and closes before joining with it: its
        // LeaveGroup names the pending id. B joins meanwhile and starts a rebalance.
        var pending = await MemberIdAsync(c, group, sessionTimeoutMs: 120000);
        var bJoin = b.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, await MemberIdAsync(b, group)));
        Assert.Equal((short)KafkaErrorCode.RebalanceInProgress, await HeartbeatUntilRebalanceAsync(a, group, joined.GenerationId, joined.MemberId));
        var aJoin = a.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, joined.MemberId));
        var left = await c.SendAsync<LeaveGroupResponse>(ApiKey.LeaveGroup, 4, new LeaveGroupRequest { GroupId = group, Members = [new() { MemberId = pending }] });
        Assert.Equal(0, left.Members.Single().ErrorCode);

        // Without waiting for the 120 s session timeout of the pending id.
        var both = await Task.WhenAll(aJoin, bJoin).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.All(both, r => Assert.Equal(0, r.ErrorCode));
        Assert.Equal(2, both.Single(r => r.MemberId == r.Leader).Members.Count);
    }

    [Fact]
    public async Task AStaticMemberThatMissesTheRebalanceTimeoutKeepsItsPlace()
    {
        var group = "static-stays-" + Guid.NewGuid().ToString("N")[..8];
        await using var s = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await using var d = await KafkaTestClient.ConnectAsync(shared.Broker.Port);

        // S, static, forms the group; it then goes quiet (a long GC pause, say) within its session.
        var stat = await s.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, instanceId: "s-1", sessionTimeoutMs: 60000, rebalanceTimeoutMs: 1000));
        Assert.Equal(0, stat.ErrorCode);

        // D joins; the rebalance ends after the 1 s rebalance timeout without S. Kafka drops only
        // dynamic members that missed it: S stays a member, and D, which rejoined, leads.
        var dJoin = await d.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, await MemberIdAsync(d, group), rebalanceTimeoutMs: 1000)).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, dJoin.ErrorCode);
        Assert.Equal(dJoin.MemberId, dJoin.Leader);
        var members = dJoin.Members.ToDictionary(m => m.MemberId, m => m.GroupInstanceId);
        Assert.Equal("s-1", members[stat.MemberId]);
        Assert.Equal(2, members.Count);

        // S learns of the new generation from its heartbeat and rejoins under the same id.
        var heartbeat = await s.SendAsync<HeartbeatResponse>(ApiKey.Heartbeat, 4, new HeartbeatRequest { GroupId = group, GenerationId = stat.GenerationId, MemberId = stat.MemberId, GroupInstanceId = "s-1" });
        Assert.Equal((short)KafkaErrorCode.IllegalGeneration, heartbeat.ErrorCode);
    }

    [Fact]
    public async Task ARestartedStaticLeaderKeepsTheAssignmentWithoutARebalance()
    {
        var group = "static-leader-" + Guid.NewGuid().ToString("N")[..8];
        await using var first = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var joined = await first.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 9, Join(group, instanceId: "leader-1"));
        Assert.Equal(joined.MemberId, joined.Leader);
        var synced = await first.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 5, new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            GroupInstanceId = "leader-1",
            ProtocolType = "consumer",
            ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = [0, 1, 2] }],
        });
        Assert.Equal(0, synced.ErrorCode);

        // v9 (KIP-814): the restarted leader is told it leads but must not assign again.
        await using var second = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var rejoined = await second.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 9, Join(group, instanceId: "leader-1"));
        Assert.Equal(0, rejoined.ErrorCode);
        Assert.Equal(joined.GenerationId, rejoined.GenerationId);
        Assert.Equal(rejoined.MemberId, rejoined.Leader);
        Assert.True(rejoined.SkipAssignment);
        Assert.Equal(rejoined.MemberId, rejoined.Members.Single().MemberId);

        // Before v9 the answer names the previous leader id, so the member syncs as a follower
        // and gets the assignment it had.
        await using var third = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var old = await third.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 5, Join(group, instanceId: "leader-1"));
        Assert.Equal(0, old.ErrorCode);
        Assert.Equal(rejoined.MemberId, old.Leader);
        Assert.Empty(old.Members);
        var follower = await third.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 3, new SyncGroupRequest { GroupId = group, GenerationId = old.GenerationId, MemberId = old.MemberId, GroupInstanceId = "leader-1" });
        Assert.Equal(0, follower.ErrorCode);
        Assert.Equal(new byte[] { 0, 1, 2 }, follower.Assignment);
    }

    [Fact]
    public async Task AMemberThatNeverSendsSyncGroupIsRemovedAfterTheRebalanceTimeout()
    {
        var group = "no-sync-" + Guid.NewGuid().ToString("N")[..8];
        await using var a = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await using var b = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        JoinGroupRequest Short(string memberId) => Join(group, memberId, sessionTimeoutMs: 30000, rebalanceTimeoutMs: 2000);
        async Task<short> SyncAsync(JoinGroupResponse joined) => (await a.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 5, new SyncGroupRequest
        {
            GroupId = group,
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            Assignments = [.. joined.Members.Select(m => new SyncGroupRequest.SyncGroupRequestAssignment { MemberId = m.MemberId, Assignment = [] })],
        })).ErrorCode;

        var aFirst = await a.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Short(await MemberIdAsync(a, group)));
        Assert.Equal(0, await SyncAsync(aFirst));

        // B joins and gets its JoinGroup answer, then only heartbeats: it never sends SyncGroup.
        var bFirst = await b.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join(group, sessionTimeoutMs: 30000, rebalanceTimeoutMs: 2000));
        var bJoin = b.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Short(bFirst.MemberId));
        Assert.Equal((short)KafkaErrorCode.RebalanceInProgress, await HeartbeatUntilRebalanceAsync(a, group, aFirst.GenerationId, aFirst.MemberId));
        var aJoined = await a.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Short(aFirst.MemberId));
        var bJoined = await bJoin;
        Assert.Equal(aJoined.MemberId, aJoined.Leader);
        Assert.Equal(0, await SyncAsync(aJoined));

        // Kafka removes it once the 2 s rebalance timeout passes, and rebalances.
        Assert.Equal((short)KafkaErrorCode.UnknownMemberId, await HeartbeatUntilRebalanceAsync(b, group, bJoined.GenerationId, bJoined.MemberId));
        Assert.Equal((short)KafkaErrorCode.RebalanceInProgress, await HeartbeatUntilRebalanceAsync(a, group, aJoined.GenerationId, aJoined.MemberId));
    }

    [Fact]
    public async Task AJoinPastGroupMaxSizeIsRefused()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["group.max.size"] = "1", ["group.initial.rebalance.delay.ms"] = "0" });
        await using var a = await KafkaTestClient.ConnectAsync(broker.Port);
        await using var b = await KafkaTestClient.ConnectAsync(broker.Port);
        var joined = await StableMemberAsync(a, "full");

        var refused = await b.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 7, Join("full"));
        Assert.Equal((short)KafkaErrorCode.GroupMaxSizeReached, refused.ErrorCode);
        Assert.Equal(string.Empty, refused.MemberId);

        // The member already in keeps its place.
        var heartbeat = await a.SendAsync<HeartbeatResponse>(ApiKey.Heartbeat, 4, new HeartbeatRequest { GroupId = "full", GenerationId = joined.GenerationId, MemberId = joined.MemberId });
        Assert.Equal(0, heartbeat.ErrorCode);
    }

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
        for (var i = 0; i < 300 && error == 0; i++)
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
