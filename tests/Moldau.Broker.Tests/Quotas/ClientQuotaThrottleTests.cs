using Microsoft.Extensions.Time.Testing;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests.Quotas;

/// <summary>Quotas enforced through the dispatcher on a fake clock: throttle times in responses, muted sessions, quotas resolved per entity.</summary>
public sealed class ClientQuotaThrottleTests : IAsyncLifetime
{
    private const string Topic = "throttled";
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));
    private BrokerHarness _broker = null!;
    private int _correlation = 100;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false, _clock);
        var created = await _broker.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 1000 });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private async Task SetAsync((string Type, string? Name)[] entity, string key, double value)
    {
        var altered = await _broker.SendAsync<AlterClientQuotasResponse>(ApiKey.AlterClientQuotas, 1, new AlterClientQuotasRequest
        {
            Entries = [new() { Entity = [.. entity.Select(e => new AlterClientQuotasRequest.EntityData { EntityType = e.Type, EntityName = e.Name })], Ops = [new() { Key = key, Value = value }] }],
        });
        Assert.Equal(0, altered.Entries.Single().ErrorCode);
    }

    private async Task<T> SendAsync<T>(ConnectionSession session, ApiKey key, short version, IKafkaMessage request, string clientId)
        where T : IKafkaMessage, new()
    {
        var correlation = ++_correlation;
        var result = await _broker.Broker.Dispatch(BrokerHarness.Frame(key, version, correlation, request, clientId), session, CancellationToken.None);
        Assert.False(result.Close, result.CloseReason);
        var frame = result.Response!.AsSpan(0, result.Length).ToArray();
        return BrokerHarness.Decode<T>(frame, correlation, ApiSpecs.Find((short)key)!.ResponseHeaderVersion(version), version);
    }

    private static ProduceRequest Produce(int valueBytes) => new()
    {
        Acks = -1,
        TimeoutMs = 1000,
        TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = Moldau.Protocol.Records.RecordBatchBuilder.Build([new(null, new byte[valueBytes], 1_800_000_000_000)]) }] }],
    };

    [Fact]
    public async Task AProducerOverItsByteRateIsThrottledAndMutedWhileAnotherClientIsNot()
    {
        await SetAsync([("client-id", "slow")], ClientQuotaTable.ProducerByteRate, 1000);
        var slow = new ConnectionSession(10, null, "PLAINTEXT");
        var fast = new ConnectionSession(11, null, "PLAINTEXT");

        // 20 KB in 10 s of windows is 2000 B/s, twice the quota: about 10 s of throttle.
        var first = await SendAsync<ProduceResponse>(slow, ApiKey.Produce, 11, Produce(20_000), "slow");
        Assert.Equal(0, first.Responses.Single().PartitionResponses.Single().ErrorCode);
        Assert.InRange(first.ThrottleTimeMs, 9_000, 11_000);
        Assert.True(slow.ThrottleRemainingMs > 0);

        var other = await SendAsync<ProduceResponse>(fast, ApiKey.Produce, 11, Produce(20_000), "fast");
        Assert.Equal(0, other.ThrottleTimeMs);
        Assert.Equal(0, fast.ThrottleRemainingMs);

        // Older versions carry the throttle too (Kafka mutes every throttled connection).
        var old = await SendAsync<ProduceResponse>(new ConnectionSession(12, null, "PLAINTEXT"), ApiKey.Produce, 3, Produce(100), "slow");
        Assert.True(old.ThrottleTimeMs > 0);
    }

    [Fact]
    public async Task AUserQuotaIsSharedByTheUsersClientsAndTheMostSpecificLevelWins()
    {
        await SetAsync([("user", "ANONYMOUS")], ClientQuotaTable.ProducerByteRate, 1000);
        await SetAsync([("user", "ANONYMOUS"), ("client-id", "vip")], ClientQuotaTable.ProducerByteRate, 1e9);
        var session = new ConnectionSession(20, null, "PLAINTEXT");

        Assert.Equal(0, (await SendAsync<ProduceResponse>(session, ApiKey.Produce, 11, Produce(6_000), "a")).ThrottleTimeMs);

        // Another client id of the same user adds to the same measured rate.
        Assert.True((await SendAsync<ProduceResponse>(session, ApiKey.Produce, 11, Produce(6_000), "b")).ThrottleTimeMs > 0);

        // user + client-id beats user.
        Assert.Equal(0, (await SendAsync<ProduceResponse>(new ConnectionSession(21, null, "PLAINTEXT"), ApiKey.Produce, 11, Produce(50_000), "vip")).ThrottleTimeMs);
    }

    [Fact]
    public async Task AThrottledFetchAnswersNoRecords()
    {
        var session = new ConnectionSession(30, null, "PLAINTEXT");
        await SendAsync<ProduceResponse>(session, ApiKey.Produce, 11, Produce(5_000), "producer");
        await SetAsync([("client-id", null)], ClientQuotaTable.ConsumerByteRate, 100);

        var fetch = new FetchRequest
        {
            ReplicaId = -1,
            MaxWaitMs = 0,
            MinBytes = 0,
            MaxBytes = 1 << 20,
            IsolationLevel = 0,
            SessionEpoch = -1,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20, LogStartOffset = -1, CurrentLeaderEpoch = -1, LastFetchedEpoch = -1 }] }],
        };
        var consumer = new ConnectionSession(31, null, "PLAINTEXT");
        var throttled = await SendAsync<FetchResponse>(consumer, ApiKey.Fetch, 12, fetch, "consumer");
        Assert.True(throttled.ThrottleTimeMs > 0);
        Assert.Null(throttled.Responses.Single().Partitions.Single().Records);
        Assert.True(consumer.ThrottleRemainingMs > 0);

        // Nothing was counted for it: once the windows pass, the same fetch is throttled again, not more.
        _clock.Advance(TimeSpan.FromSeconds(12));
        var again = await SendAsync<FetchResponse>(new ConnectionSession(32, null, "PLAINTEXT"), ApiKey.Fetch, 12, fetch, "consumer");
        Assert.Equal(throttled.ThrottleTimeMs, again.ThrottleTimeMs);
    }

    private Task<CreateTopicsResponse> CreateAsync(ConnectionSession session, short version, string client, string name, int partitions) =>
        SendAsync<CreateTopicsResponse>(session, ApiKey.CreateTopics, version, new CreateTopicsRequest { Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }], TimeoutMs = 1000 }, client);

    [Fact]
    public async Task PartitionMutationsBeyondTheControllerMutationRateAreRefusedOrThrottled()
    {
        // 1 partition per second: a burst of 11.
        await SetAsync([("client-id", null)], ClientQuotaTable.ControllerMutationRate, 1);
        var session = new ConnectionSession(50, null, "PLAINTEXT");
        var first = await CreateAsync(session, 7, "admin", "m1", 11);
        Assert.Equal(0, first.Topics.Single().ErrorCode);
        Assert.Equal(0, first.ThrottleTimeMs);

        // Not exceeded before it: allowed, and the bucket goes below zero.
        Assert.Equal(0, (await CreateAsync(session, 7, "admin", "m2", 3)).Topics.Single().ErrorCode);

        // Exceeded: v6+ refuses with THROTTLING_QUOTA_EXCEEDED and the time until the bucket is back at zero.
        var refused = await CreateAsync(session, 7, "admin", "m3", 1);
        Assert.Equal((short)ErrorCode.ThrottlingQuotaExceeded, refused.Topics.Single().ErrorCode);
        Assert.Equal(3000, refused.ThrottleTimeMs);
        Assert.True(session.ThrottleRemainingMs > 0);
        Assert.Equal((short)ErrorCode.ThrottlingQuotaExceeded, (await SendAsync<DeleteTopicsResponse>(session, ApiKey.DeleteTopics, 6, new DeleteTopicsRequest { Topics = [new() { Name = "m1" }], TimeoutMs = 1000 }, "admin")).Responses.Single().ErrorCode);

        // Older versions are only throttled (another client id: a bucket of its own).
        var old = await CreateAsync(new ConnectionSession(51, null, "PLAINTEXT"), 5, "old-admin", "m4", 16);
        Assert.Equal(0, old.Topics.Single().ErrorCode);
        Assert.Equal(5000, old.ThrottleTimeMs);

        // The bucket refills at the rate.
        _clock.Advance(TimeSpan.FromSeconds(4));
        Assert.Equal(0, (await CreateAsync(session, 7, "admin", "m5", 1)).Topics.Single().ErrorCode);
    }

    [Fact]
    public async Task WithoutQuotasNothingIsThrottled()
    {
        var session = new ConnectionSession(40, null, "PLAINTEXT");
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(0, (await SendAsync<ProduceResponse>(session, ApiKey.Produce, 11, Produce(100_000), "anyone")).ThrottleTimeMs);
        }

        Assert.Equal(0, session.ThrottleRemainingMs);
    }
}
