using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>DescribeConfigs, AlterConfigs and IncrementalAlterConfigs through the dispatcher: what is set is what is described.</summary>
public sealed class ConfigDispatchTests : IAsyncLifetime
{
    private const sbyte TopicResource = 2;
    private const sbyte BrokerResource = 4;
    private const sbyte DynamicTopicConfig = 1;
    private const sbyte DefaultConfig = 5;
    private const sbyte Set = 0;
    private const sbyte Delete = 1;
    private const sbyte Append = 2;
    private const sbyte Subtract = 3;
    private const string Topic = "configured";
    private BrokerHarness _broker = null!;

    public async Task InitializeAsync()
    {
        _broker = BrokerHarness.Start();
        var created = await _broker.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "retention.ms", Value = "3600000" }] }],
            TimeoutMs = 1000,
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _broker.SendAsync<T>(key, version, request);

    private async Task<DescribeConfigsResponse.DescribeConfigsResult> DescribeAsync(short version = 4, string name = Topic, sbyte type = TopicResource, params string[] keys) =>
        Assert.Single((await Send<DescribeConfigsResponse>(ApiKey.DescribeConfigs, version, new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = type, ResourceName = name, ConfigurationKeys = keys.Length == 0 ? null : [.. keys] }],
        })).Results);

    private async Task<DescribeConfigsResponse.DescribeConfigsResourceResult> ConfigAsync(string key) =>
        Assert.Single((await DescribeAsync(4, Topic, TopicResource, key)).Configs);

    private async Task<AlterConfigsResponse.AlterConfigsResourceResponse> AlterAsync(short version, bool validateOnly, string topic, params (string Name, string? Value)[] configs) =>
        Assert.Single((await Send<AlterConfigsResponse>(ApiKey.AlterConfigs, version, new AlterConfigsRequest
        {
            ValidateOnly = validateOnly,
            Resources = [new() { ResourceType = TopicResource, ResourceName = topic, Configs = [.. configs.Select(c => new AlterConfigsRequest.AlterableConfig { Name = c.Name, Value = c.Value })] }],
        })).Responses);

    private async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> IncrementalAsync(short version, bool validateOnly, string topic, params (string Name, sbyte Operation, string? Value)[] configs) =>
        Assert.Single((await Send<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, version, new IncrementalAlterConfigsRequest
        {
            ValidateOnly = validateOnly,
            Resources = [new() { ResourceType = TopicResource, ResourceName = topic, Configs = [.. configs.Select(c => new IncrementalAlterConfigsRequest.AlterableConfig { Name = c.Name, ConfigOperation = c.Operation, Value = c.Value })] }],
        })).Responses);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(4)]
    [Covers(ApiKey.DescribeConfigs)]
    public async Task DescribeConfigsShowsOverridesAndDefaultsWithTheirSources(short version)
    {
        var all = await DescribeAsync(version);
        Assert.Equal(((short)0, TopicResource, Topic), (all.ErrorCode, all.ResourceType, all.ResourceName));
        var retention = Assert.Single(all.Configs, c => c.Name == "retention.ms");
        Assert.Equal(("3600000", false, false), (retention.Value, retention.IsDefault, retention.ReadOnly));
        var policy = Assert.Single(all.Configs, c => c.Name == "cleanup.policy");
        Assert.Equal("delete", policy.Value);
        if (version == 0)
        {
            Assert.True(policy.IsDefault);
        }
        else
        {
            Assert.Equal((DynamicTopicConfig, DefaultConfig), (retention.ConfigSource, policy.ConfigSource));
        }

        if (version >= 3)
        {
            Assert.Equal(((sbyte)5, (sbyte)7), (retention.ConfigType, policy.ConfigType)); // LONG, LIST
        }

        // Only the keys asked for.
        var some = await DescribeAsync(version, Topic, TopicResource, "cleanup.policy", "retention.ms");
        Assert.Equal(["cleanup.policy", "retention.ms"], some.Configs.Select(c => c.Name).Order());

        var unknown = await DescribeAsync(version, "nowhere");
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknown.ErrorCode);
        Assert.Empty(unknown.Configs);

        // This broker by its id or by the empty name; another broker's id is refused.
        var broker = await DescribeAsync(version, "1", BrokerResource);
        Assert.Equal((short)0, broker.ErrorCode);
        Assert.Contains(broker.Configs, c => c.Name == "log.retention.ms");
        Assert.Equal((short)0, (await DescribeAsync(version, string.Empty, BrokerResource)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await DescribeAsync(version, "2", BrokerResource)).ErrorCode);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(2)]
    [Covers(ApiKey.AlterConfigs)]
    public async Task AlterConfigsReplacesTheWholeSetOfOverrides(short version)
    {
        var altered = await AlterAsync(version, false, Topic, ("cleanup.policy", "compact"), ("segment.bytes", "1048576"));
        Assert.Equal(((short)0, TopicResource, Topic), (altered.ErrorCode, altered.ResourceType, altered.ResourceName));
        Assert.Equal(("compact", DynamicTopicConfig), await ConfigAsync("cleanup.policy") is var p ? (p.Value, p.ConfigSource) : default);
        Assert.Equal(("1048576", DynamicTopicConfig), await ConfigAsync("segment.bytes") is var s ? (s.Value, s.ConfigSource) : default);

        // retention.ms was not named: the override is gone, the default shows.
        Assert.Equal(("604800000", DefaultConfig), await ConfigAsync("retention.ms") is var r ? (r.Value, r.ConfigSource) : default);

        // Validate only: answered, not applied.
        Assert.Equal((short)0, (await AlterAsync(version, true, Topic, ("cleanup.policy", "delete"))).ErrorCode);
        Assert.Equal("compact", (await ConfigAsync("cleanup.policy")).Value);

        // Refused values change nothing.
        Assert.Equal((short)ErrorCode.InvalidConfig, (await AlterAsync(version, false, Topic, ("cleanup.policy", "shred"))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await AlterAsync(version, false, Topic, ("retention.ms", "soon"))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await AlterAsync(version, true, Topic, ("no.such.config", "1"))).ErrorCode);
        Assert.Equal("compact", (await ConfigAsync("cleanup.policy")).Value);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await AlterAsync(version, false, "nowhere", ("cleanup.policy", "compact"))).ErrorCode);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [Covers(ApiKey.IncrementalAlterConfigs)]
    public async Task IncrementalAlterConfigsSetsDeletesAppendsAndSubtracts(short version)
    {
        Assert.Equal((short)0, (await IncrementalAsync(version, false, Topic, ("segment.bytes", Set, "2097152"), ("cleanup.policy", Set, "delete"))).ErrorCode);
        Assert.Equal(("2097152", DynamicTopicConfig), await ConfigAsync("segment.bytes") is var s ? (s.Value, s.ConfigSource) : default);

        // Unlike AlterConfigs, what is not named stays.
        Assert.Equal("3600000", (await ConfigAsync("retention.ms")).Value);

        Assert.Equal((short)0, (await IncrementalAsync(version, false, Topic, ("cleanup.policy", Append, "compact"))).ErrorCode);
        Assert.Equal("delete,compact", (await ConfigAsync("cleanup.policy")).Value);
        Assert.Equal((short)0, (await IncrementalAsync(version, false, Topic, ("cleanup.policy", Subtract, "delete"))).ErrorCode);
        Assert.Equal("compact", (await ConfigAsync("cleanup.policy")).Value);

        Assert.Equal((short)0, (await IncrementalAsync(version, false, Topic, ("retention.ms", Delete, null))).ErrorCode);
        Assert.Equal(("604800000", DefaultConfig), await ConfigAsync("retention.ms") is var r ? (r.Value, r.ConfigSource) : default);

        Assert.Equal((short)0, (await IncrementalAsync(version, true, Topic, ("segment.bytes", Set, "4194304"))).ErrorCode);
        Assert.Equal("2097152", (await ConfigAsync("segment.bytes")).Value);

        Assert.Equal((short)ErrorCode.InvalidConfig, (await IncrementalAsync(version, false, Topic, ("segment.bytes", Set, "big"))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidConfig, (await IncrementalAsync(version, false, Topic, ("cleanup.policy", Append, "shred"))).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidRequest, (await IncrementalAsync(version, false, Topic, ("segment.bytes", 9, "1"))).ErrorCode);
        Assert.Equal("2097152", (await ConfigAsync("segment.bytes")).Value);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await IncrementalAsync(version, false, "nowhere", ("segment.bytes", Set, "1048576"))).ErrorCode);
    }
}
