using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker.Configuration;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Tests;

/// <summary>
/// Walks every config DescribeConfigs reports, for a topic and for the broker, and holds each to
/// one decision: acted on (a change reaches the open log's settings, and goes when deleted),
/// refused with INVALID_CONFIG (only the default is accepted), or read-only (AlterConfigs refuses
/// it). A key added to the definitions without an entry here fails the walk. What each setting
/// does in the log is shown in Moldau.Storage.Tests (LogConfigTests and the segment, retention,
/// flush and compaction tests) and, through real clients, in Moldau.IntegrationTests (TopicConfigTests).
/// </summary>
public sealed class ConfigTableTests : IAsyncLifetime
{
    private BrokerHarness? _harness;

    /// <summary>Topic keys the broker acts on: a value other than the default, and how the log's settings show it.</summary>
    private static readonly Dictionary<string, (string Value, Func<PartitionLogOptions, bool> Shows)> Acted = new()
    {
        ["cleanup.policy"] = ("compact", o => o.Compact && !o.Delete),
        ["compression.type"] = ("zstd", o => o.Compression == CompressionType.Zstd),
        ["delete.retention.ms"] = ("1234", o => o.DeleteRetentionMs == 1234),
        ["file.delete.delay.ms"] = ("1234", o => o.FileDeleteDelay == TimeSpan.FromMilliseconds(1234)),
        ["flush.messages"] = ("7", o => o.FlushMessages == 7 && !o.SyncBeforeAck),
        ["flush.ms"] = ("1234", o => o.FlushInterval == TimeSpan.FromMilliseconds(1234) && !o.SyncBeforeAck),
        ["index.interval.bytes"] = ("100", o => o.IndexIntervalBytes == 100),
        ["max.compaction.lag.ms"] = ("1234", o => o.MaxCompactionLagMs == 1234),
        ["max.message.bytes"] = ("2098176", o => o.MaxMessageBytes == 2098176),
        ["message.timestamp.after.max.ms"] = ("1234", o => o.TimestampAfterMaxMs == 1234),
        ["message.timestamp.before.max.ms"] = ("1234", o => o.TimestampBeforeMaxMs == 1234),
        ["message.timestamp.type"] = ("LogAppendTime", o => o.LogAppendTime),
        ["min.cleanable.dirty.ratio"] = ("0.25", o => o.MinCleanableDirtyRatio == 0.25),
        ["min.compaction.lag.ms"] = ("1234", o => o.MinCompactionLagMs == 1234),
        ["min.insync.replicas"] = ("2", o => o.MinInSyncReplicas == 2),
        ["retention.bytes"] = ("1234", o => o.RetentionBytes == 1234),
        ["retention.ms"] = ("1234", o => o.RetentionMs == 1234),
        ["segment.bytes"] = ("1048576", o => o.SegmentBytes == 1048576),
        ["segment.index.bytes"] = ("4096", o => o.MaxIndexBytes == 4096),
        ["segment.jitter.ms"] = ("1234", o => o.SegmentJitter == TimeSpan.FromMilliseconds(1234)),
        ["segment.ms"] = ("1234", o => o.SegmentAge == TimeSpan.FromMilliseconds(1234)),
    };

    /// <summary>Topic keys Moldau can't honour: any value but the default is INVALID_CONFIG.</summary>
    private static readonly Dictionary<string, string> Refused = new()
    {
        ["preallocate"] = "true",
        ["unclean.leader.election.enable"] = "true",
    };

    /// <summary>Broker keys in another unit than their topic key's: a value, and how the log's settings show it.</summary>
    private static readonly Dictionary<string, (string Value, Func<PartitionLogOptions, bool> Shows)> ScaledBrokerKeys = new()
    {
        ["log.retention.minutes"] = ("2", o => o.RetentionMs == 120_000),
        ["log.retention.hours"] = ("2", o => o.RetentionMs == 7_200_000),
        ["log.roll.hours"] = ("2", o => o.SegmentAge == TimeSpan.FromHours(2)),
        ["log.roll.jitter.hours"] = ("2", o => o.SegmentJitter == TimeSpan.FromHours(2)),
    };

    private KafkaBroker Broker => _harness!.Broker;

    public Task InitializeAsync()
    {
        _harness = BrokerHarness.Start(o => o.NumPartitions = 1);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _harness!.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _harness!.SendAsync<T>(key, version, request);

    private PartitionLogOptions LogOptions(string topic) => Broker.State.Topics.Find(topic)!.Partition(0)!.Log!.Options;

    private async Task<IncrementalAlterConfigsResponse.AlterConfigsResourceResponse> Alter(sbyte type, string name, string key, string? value, sbyte operation = 0)
    {
        var response = await Send<IncrementalAlterConfigsResponse>(ApiKey.IncrementalAlterConfigs, 1, new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = type, ResourceName = name, Configs = [new() { Name = key, Value = value, ConfigOperation = operation }] }],
        });
        return response.Responses.Single();
    }

    private async Task<List<DescribeConfigsResponse.DescribeConfigsResourceResult>> Describe(sbyte type, string name)
    {
        var response = await Send<DescribeConfigsResponse>(ApiKey.DescribeConfigs, 4, new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = type, ResourceName = name, ConfigurationKeys = null }],
            IncludeSynonyms = true,
            IncludeDocumentation = true,
        });
        Assert.Equal(0, response.Results.Single().ErrorCode);
        return response.Results.Single().Configs;
    }

    private async Task CreateTopic(string name)
    {
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = 1, ReplicationFactor = 1 }],
            TimeoutMs = 10_000,
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
    }

    [Fact]
    public async Task EveryTopicConfigIsActedOnRefusedOrReadOnly()
    {
        await CreateTopic("walk");
        var defaults = LogOptions("walk");
        var described = await Describe(2, "walk");
        Assert.Equal(TopicConfigDefinitions.All.Keys.Order(StringComparer.Ordinal), described.Select(c => c.Name));
        foreach (var config in described)
        {
            Assert.False(string.IsNullOrEmpty(config.Documentation), config.Name);
            Assert.NotEqual(0, config.ConfigType);
            Assert.Equal((sbyte)ConfigSource.DefaultConfig, config.ConfigSource);
            if (Acted.TryGetValue(config.Name, out var acted))
            {
                Assert.False(config.ReadOnly, config.Name);
                Assert.False(acted.Shows(defaults), $"{config.Name}: the probe holds before the change");
                Assert.Equal(0, (await Alter(2, "walk", config.Name, acted.Value)).ErrorCode);
                Assert.True(acted.Shows(LogOptions("walk")), $"{config.Name}={acted.Value} did not reach the open log");
                var now = (await Describe(2, "walk")).Single(c => c.Name == config.Name);
                Assert.Equal((acted.Value, (sbyte)ConfigSource.DynamicTopicConfig), (now.Value, now.ConfigSource));
                Assert.Equal(0, (await Alter(2, "walk", config.Name, null, operation: 1)).ErrorCode);
                Assert.Equal(defaults, LogOptions("walk"));
            }
            else if (Refused.TryGetValue(config.Name, out var refused))
            {
                Assert.Equal(config.Value, TopicConfigDefinitions.Find(config.Name)!.Default);
                var answer = await Alter(2, "walk", config.Name, refused);
                Assert.Equal((short)ErrorCode.InvalidConfig, answer.ErrorCode);
                Assert.Contains(config.Name, answer.ErrorMessage, StringComparison.Ordinal);
                Assert.Equal(0, (await Alter(2, "walk", config.Name, config.Value)).ErrorCode);
            }
            else if (config.ReadOnly)
            {
                Assert.NotEqual(0, (await Alter(2, "walk", config.Name, config.Value)).ErrorCode);
            }
            else
            {
                Assert.Fail($"topic config {config.Name} is reported but neither acted on, refused nor read-only: decide, and add it here");
            }
        }
    }

    [Fact]
    public async Task EveryBrokerConfigIsActedOnRefusedOrReadOnly()
    {
        await CreateTopic("inherits");
        var defaults = LogOptions("inherits");
        var described = await Describe(4, "1");
        Assert.Equal(BrokerConfigDefinitions.All.Keys.Order(StringComparer.Ordinal), described.Select(c => c.Name));
        foreach (var config in described)
        {
            Assert.False(string.IsNullOrEmpty(config.Documentation), config.Name);
            var served = TopicConfigDefinitions.ServedBy(config.Name).SingleOrDefault();
            if (config.ReadOnly)
            {
                Assert.Null(served);
                var answer = await Alter(4, "1", config.Name, config.Value ?? "1");
                Assert.Equal((short)ErrorCode.InvalidConfig, answer.ErrorCode);
                Assert.Contains(config.Name, answer.ErrorMessage, StringComparison.Ordinal);
                continue;
            }

            // A dynamic broker key sets a topic config's default: it reaches a topic without an override.
            Assert.NotNull(served);
            if (Refused.TryGetValue(served.Name, out var refused))
            {
                Assert.Equal((short)ErrorCode.InvalidConfig, (await Alter(4, "1", config.Name, refused)).ErrorCode);
                continue;
            }

            var (value, shows) = ScaledBrokerKeys.TryGetValue(config.Name, out var scaled) ? scaled
                : Acted.TryGetValue(served.Name, out var acted) ? acted
                : throw new Xunit.Sdk.XunitException($"broker config {config.Name} sets {served.Name}, which is neither acted on nor refused");
            Assert.Equal(0, (await Alter(4, "1", config.Name, value)).ErrorCode);
            Assert.True(shows(LogOptions("inherits")), $"{config.Name}={value} did not reach the open log of a topic without an override");
            var topicView = (await Describe(2, "inherits")).Single(c => c.Name == served.Name);
            Assert.Equal((sbyte)ConfigSource.DynamicBrokerConfig, topicView.ConfigSource);
            Assert.Contains(topicView.Synonyms, s => s.Name == config.Name && s.Value == value);
            Assert.Equal(0, (await Alter(4, "1", config.Name, null, operation: 1)).ErrorCode);
            Assert.Equal(defaults, LogOptions("inherits"));
        }
    }

    [Fact]
    public async Task ATopicOverrideWinsOverTheBrokerWhichWinsOverTheDefault()
    {
        await CreateTopic("layers");
        Assert.Equal(0, (await Alter(4, "1", "log.retention.hours", "3")).ErrorCode);
        var retention = (await Describe(2, "layers")).Single(c => c.Name == "retention.ms");
        Assert.Equal(("10800000", (sbyte)ConfigSource.DynamicBrokerConfig), (retention.Value, retention.ConfigSource));
        Assert.Equal(10_800_000, LogOptions("layers").RetentionMs);

        Assert.Equal(0, (await Alter(4, "1", "log.retention.ms", "5000")).ErrorCode);
        Assert.Equal(5000, LogOptions("layers").RetentionMs); // log.retention.ms before log.retention.hours

        Assert.Equal(0, (await Alter(2, "layers", "retention.ms", "7000")).ErrorCode);
        retention = (await Describe(2, "layers")).Single(c => c.Name == "retention.ms");
        Assert.Equal(
            [("retention.ms", "7000", ConfigSource.DynamicTopicConfig), ("log.retention.ms", "5000", ConfigSource.DynamicBrokerConfig), ("log.retention.hours", "3", ConfigSource.DynamicBrokerConfig), ("log.retention.hours", "168", ConfigSource.DefaultConfig)],
            retention.Synonyms.Select(s => (s.Name, s.Value, (ConfigSource)s.Source)));
        Assert.Equal(7000, LogOptions("layers").RetentionMs);
    }

    [Theory]
    [InlineData("retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG")]
    [InlineData("segment.bytes", "10", "Invalid value 10 for configuration segment.bytes: Value must be at least 14")]
    [InlineData("cleanup.policy", "compact,shred", "Invalid value compact,shred for configuration cleanup.policy: String must be one of: compact, delete")]
    [InlineData("min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1")]
    [InlineData("no.such.config", "1", "Unknown topic config name: no.such.config")]
    public async Task InvalidTopicConfigsAreInvalidConfig(string key, string value, string message)
    {
        await CreateTopic("bad");
        var answer = await Alter(2, "bad", key, value);
        Assert.Equal(((short)ErrorCode.InvalidConfig, message), (answer.ErrorCode, answer.ErrorMessage));

        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = "bad2", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = key, Value = value }] }],
            TimeoutMs = 10_000,
        });
        Assert.Equal(((short)ErrorCode.InvalidConfig, message), (created.Topics.Single().ErrorCode, created.Topics.Single().ErrorMessage));
        Assert.Null(Broker.State.Topics.Find("bad2"));
    }

    [Fact]
    public async Task ConflictingCompactionLagsAreInvalidConfig()
    {
        await CreateTopic("lags");
        Assert.Equal(0, (await Alter(2, "lags", "max.compaction.lag.ms", "1000")).ErrorCode);
        var answer = await Alter(2, "lags", "min.compaction.lag.ms", "2000");
        Assert.Equal((short)ErrorCode.InvalidConfig, answer.ErrorCode);
        Assert.Contains("min.compaction.lag.ms (2000) > max.compaction.lag.ms (1000)", answer.ErrorMessage, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AppendAndSubtractWorkOnListsOnly()
    {
        await CreateTopic("lists");
        Assert.Equal(0, (await Alter(2, "lists", "cleanup.policy", "compact", operation: 2)).ErrorCode);
        var policy = LogOptions("lists");
        Assert.True(policy.Compact && policy.Delete); // from the default "delete"
        Assert.Equal(0, (await Alter(2, "lists", "cleanup.policy", "delete", operation: 3)).ErrorCode);
        Assert.True(LogOptions("lists") is { Compact: true, Delete: false });

        var answer = await Alter(2, "lists", "retention.ms", "5", operation: 2);
        Assert.Equal((short)ErrorCode.InvalidConfig, answer.ErrorCode);
        Assert.Equal("Config value append is not allowed for config key: retention.ms", answer.ErrorMessage);
    }

    [Fact]
    public async Task CreateTopicsAnswersEveryConfigWithItsSource()
    {
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = "sources", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "max.message.bytes", Value = "2098176" }] }],
            TimeoutMs = 10_000,
        });
        var configs = created.Topics.Single().Configs!;
        Assert.Equal(TopicConfigDefinitions.All.Count, configs.Count);
        Assert.Contains(configs, c => c is { Name: "max.message.bytes", Value: "2098176", ConfigSource: (sbyte)ConfigSource.DynamicTopicConfig });
        Assert.Contains(configs, c => c is { Name: "segment.bytes", Value: "1073741824", ConfigSource: (sbyte)ConfigSource.DefaultConfig });
        Assert.Equal(2098176, LogOptions("sources").MaxMessageBytes);
    }
}
