using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests.Quotas;

/// <summary>AlterClientQuotas and DescribeClientQuotas through the dispatcher: what is set is described, filtered as Kafka filters, and survives a restart.</summary>
public sealed class ClientQuotaDispatchTests : IAsyncLifetime
{
    private const sbyte Exact = 0;
    private const sbyte Default = 1;
    private const sbyte Any = 2;
    private BrokerHarness _broker = null!;

    public Task InitializeAsync()
    {
        _broker = BrokerHarness.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private static AlterClientQuotasRequest.EntryData Entry((string Type, string? Name)[] entity, params (string Key, double Value, bool Remove)[] ops) => new()
    {
        Entity = [.. entity.Select(e => new AlterClientQuotasRequest.EntityData { EntityType = e.Type, EntityName = e.Name })],
        Ops = [.. ops.Select(o => new AlterClientQuotasRequest.OpData { Key = o.Key, Value = o.Value, Remove = o.Remove })],
    };

    private static Task<AlterClientQuotasResponse> AlterAsync(BrokerHarness broker, short version, bool validateOnly, params AlterClientQuotasRequest.EntryData[] entries) =>
        broker.SendAsync<AlterClientQuotasResponse>(ApiKey.AlterClientQuotas, version, new AlterClientQuotasRequest { Entries = [.. entries], ValidateOnly = validateOnly });

    private static Task<DescribeClientQuotasResponse> DescribeAsync(BrokerHarness broker, short version, bool strict, params (string Type, sbyte MatchType, string? Match)[] components) =>
        broker.SendAsync<DescribeClientQuotasResponse>(ApiKey.DescribeClientQuotas, version, new DescribeClientQuotasRequest
        {
            Components = [.. components.Select(c => new DescribeClientQuotasRequest.ComponentData { EntityType = c.Type, MatchType = c.MatchType, Match = c.Match })],
            Strict = strict,
        });

    /// <summary>Each entry as "type=name,...: key=value,..." (names sorted), for comparing.</summary>
    private static List<string> Described(DescribeClientQuotasResponse response)
    {
        Assert.Equal(0, response.ErrorCode);
        return [.. response.Entries!.Select(e =>
                string.Join(",", e.Entity.Select(p => $"{p.EntityType}={p.EntityName ?? "<default>"}")) + ": " + string.Join(",", e.Values.Select(v => $"{v.Key}={v.Value}")))
            .Order(StringComparer.Ordinal)];
    }

    private async Task SetUpAsync()
    {
        var altered = await AlterAsync(
            _broker,
            1,
            false,
            Entry([("user", "alice")], ("producer_byte_rate", 1024, false), ("request_percentage", 50, false)),
            Entry([("user", "alice"), ("client-id", "app")], ("consumer_byte_rate", 2048, false)),
            Entry([("user", null)], ("producer_byte_rate", 4096, false)),
            Entry([("client-id", null)], ("controller_mutation_rate", 10, false)),
            Entry([("client-id", "app")], ("producer_byte_rate", 8192, false)));
        Assert.All(altered.Entries, e => Assert.Equal(0, e.ErrorCode));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [Covers(ApiKey.AlterClientQuotas)]
    [Covers(ApiKey.DescribeClientQuotas)]
    public async Task WhatIsSetIsDescribed(short version)
    {
        var altered = await AlterAsync(_broker, version, false, Entry([("user", "bob"), ("client-id", null)], ("producer_byte_rate", 1000, false), ("consumer_byte_rate", 2000, false)));
        var entry = Assert.Single(altered.Entries);
        Assert.Equal(0, entry.ErrorCode);
        Assert.Null(entry.ErrorMessage);
        Assert.Equal(["user", "client-id"], entry.Entity.Select(e => e.EntityType));
        Assert.Null(entry.Entity[1].EntityName);

        Assert.Equal(["user=bob,client-id=<default>: consumer_byte_rate=2000,producer_byte_rate=1000"], Described(await DescribeAsync(_broker, version, false, ("user", Exact, "bob"))));

        // Removing one key keeps the other; removing the last drops the entity.
        await AlterAsync(_broker, version, false, Entry([("user", "bob"), ("client-id", null)], ("producer_byte_rate", 0, true)));
        Assert.Equal(["user=bob,client-id=<default>: consumer_byte_rate=2000"], Described(await DescribeAsync(_broker, version, false, ("user", Exact, "bob"))));
        await AlterAsync(_broker, version, false, Entry([("user", "bob"), ("client-id", null)], ("consumer_byte_rate", 0, true)));
        Assert.Empty(Described(await DescribeAsync(_broker, version, false, ("user", Exact, "bob"))));
    }

    [Fact]
    public async Task FiltersMatchAsKafkasDo()
    {
        await SetUpAsync();

        // No components: everything (not strict); strict with none: nothing has zero parts.
        Assert.Equal(5, Described(await DescribeAsync(_broker, 1, false)).Count);
        Assert.Empty(Described(await DescribeAsync(_broker, 1, true)));

        Assert.Equal(
            ["user=alice,client-id=app: consumer_byte_rate=2048", "user=alice: producer_byte_rate=1024,request_percentage=50"],
            Described(await DescribeAsync(_broker, 1, false, ("user", Exact, "alice"))));
        Assert.Equal(["user=alice: producer_byte_rate=1024,request_percentage=50"], Described(await DescribeAsync(_broker, 1, true, ("user", Exact, "alice"))));
        Assert.Equal(["user=<default>: producer_byte_rate=4096"], Described(await DescribeAsync(_broker, 1, false, ("user", Default, null))));

        // Any: the entity has the part, named or default.
        Assert.Equal(
            ["user=<default>: producer_byte_rate=4096", "user=alice: producer_byte_rate=1024,request_percentage=50"],
            Described(await DescribeAsync(_broker, 1, true, ("user", Any, null))));
        Assert.Equal(
            ["client-id=<default>: controller_mutation_rate=10", "client-id=app: producer_byte_rate=8192", "user=alice,client-id=app: consumer_byte_rate=2048"],
            Described(await DescribeAsync(_broker, 1, false, ("client-id", Any, null))));
        Assert.Equal(["user=alice,client-id=app: consumer_byte_rate=2048"], Described(await DescribeAsync(_broker, 1, true, ("client-id", Exact, "app"), ("user", Any, null))));
    }

    [Theory]
    [InlineData("user", (sbyte)0, null, ErrorCode.InvalidRequest)]
    [InlineData("user", (sbyte)1, "x", ErrorCode.InvalidRequest)]
    [InlineData("user", (sbyte)2, "x", ErrorCode.InvalidRequest)]
    [InlineData("user", (sbyte)3, null, ErrorCode.InvalidRequest)]
    [InlineData("", (sbyte)2, null, ErrorCode.InvalidRequest)]
    [InlineData("group", (sbyte)2, null, ErrorCode.UnsupportedVersion)]
    public async Task ABadFilterFailsTheWholeDescribe(string type, sbyte matchType, string? match, ErrorCode expected)
    {
        var response = await DescribeAsync(_broker, 1, false, (type, matchType, match));
        Assert.Equal((short)expected, response.ErrorCode);
        Assert.NotNull(response.ErrorMessage);
        Assert.Null(response.Entries);
    }

    [Fact]
    public async Task IpWithUserInAFilterIsInvalid()
    {
        var response = await DescribeAsync(_broker, 1, false, ("ip", Any, null), ("user", Any, null));
        Assert.Equal((short)ErrorCode.InvalidRequest, response.ErrorCode);
        response = await DescribeAsync(_broker, 1, false, ("user", Any, null), ("user", Exact, "a"));
        Assert.Equal((short)ErrorCode.InvalidRequest, response.ErrorCode);
    }

    [Fact]
    public async Task EachBadEntryFailsAloneWithInvalidRequest()
    {
        var altered = await AlterAsync(
            _broker,
            1,
            false,
            Entry([], ("producer_byte_rate", 1, false)),
            Entry([("user", "a"), ("user", "b")], ("producer_byte_rate", 1, false)),
            Entry([("group", "g")], ("producer_byte_rate", 1, false)),
            Entry([("ip", "10.0.0.1"), ("user", "a")], ("connection_creation_rate", 1, false)),
            Entry([("user", "")], ("producer_byte_rate", 1, false)),
            Entry([("user", "a")], ("no_such_quota", 1, false)),
            Entry([("user", "a")], ("connection_creation_rate", 1, false)),
            Entry([("ip", "10.0.0.1")], ("producer_byte_rate", 1, false)),
            Entry([("ip", "not an address")], ("connection_creation_rate", 1, false)),
            Entry([("user", "a")], ("producer_byte_rate", 1.5, false)),
            Entry([("user", "a")], ("producer_byte_rate", -1, false)),
            Entry([("user", "a")], ("producer_byte_rate", 1, false), ("producer_byte_rate", 2, false)),
            Entry([("user", "good")], ("request_percentage", 12.5, false)),
            Entry([("ip", null)], ("connection_creation_rate", 5, false)));
        Assert.Equal(
            [.. Enumerable.Repeat((short)ErrorCode.InvalidRequest, 12), (short)0, (short)0],
            altered.Entries.Select(e => e.ErrorCode));
        Assert.All(altered.Entries.Take(12), e => Assert.False(string.IsNullOrEmpty(e.ErrorMessage)));
        Assert.Equal(
            ["ip=<default>: connection_creation_rate=5", "user=good: request_percentage=12.5"],
            Described(await DescribeAsync(_broker, 1, false)));
    }

    [Fact]
    public async Task ValidateOnlyChangesNothing()
    {
        var altered = await AlterAsync(_broker, 1, true, Entry([("user", "a")], ("producer_byte_rate", 100, false)), Entry([("user", "a")], ("bogus", 1, false)));
        Assert.Equal([(short)0, (short)ErrorCode.InvalidRequest], altered.Entries.Select(e => e.ErrorCode));
        Assert.Empty(Described(await DescribeAsync(_broker, 1, false)));
    }

    [Fact]
    public async Task QuotasAreReplayedAfterARestart()
    {
        var dir = Path.Combine(Path.GetTempPath(), "quota-restart-" + Guid.NewGuid().ToString("N")[..10]);
        try
        {
            var first = BrokerHarness.Start(o => o.LogDirs = [dir]);
            var before = (await AlterAsync(first, 1, false, Entry([("user", "alice"), ("client-id", null)], ("producer_byte_rate", 1024, false)), Entry([("client-id", "c")], ("request_percentage", 25, false)))).Entries;
            Assert.All(before, e => Assert.Equal(0, e.ErrorCode));
            await AlterAsync(first, 1, false, Entry([("client-id", "c")], ("request_percentage", 0, true)), Entry([("user", null)], ("consumer_byte_rate", 5000, false)));
            await first.Broker.DisposeAsync();

            var second = BrokerHarness.Start(o => o.LogDirs = [dir]);
            try
            {
                Assert.Equal(
                    ["user=<default>: consumer_byte_rate=5000", "user=alice,client-id=<default>: producer_byte_rate=1024"],
                    Described(await DescribeAsync(second, 1, false)));
            }
            finally
            {
                await second.Broker.DisposeAsync();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
