using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// Topic configs are checked the same way by CreateTopics (real and validateOnly), AlterConfigs
/// and IncrementalAlterConfigs (issue 18, item 4), seen through Confluent.Kafka's admin client.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class TopicConfigValidationTests(SharedBroker shared)
{
    private static string NewTopic() => "configs-" + Guid.NewGuid().ToString("N")[..8];

    private IAdminClient Admin()
    {
        Librdkafka.EnsureLoaded();
        return new AdminClientBuilder(new AdminClientConfig { BootstrapServers = shared.Broker.BootstrapServers }).Build();
    }

    [Theory]
    [InlineData("dummy.doesntexist", "1", "Unknown topic config name: dummy.doesntexist")]
    [InlineData("retention.ms", "abc", "Invalid value abc for configuration retention.ms: Not a number of type LONG")]
    [InlineData("segment.bytes", "10", "Invalid value 10 for configuration segment.bytes: Value must be at least 14")]
    [InlineData("cleanup.policy", "compact,shred", "Invalid value compact,shred for configuration cleanup.policy: String must be one of: compact, delete")]
    [InlineData("min.cleanable.dirty.ratio", "1.5", "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1")]
    [InlineData("preallocate", "yes", "Invalid value yes for configuration preallocate: Expected value to be either true or false")]
    public async Task CreateTopicsRefusesABadConfigWithInvalidConfigAndCreatesNothing(string name, string value, string message)
    {
        using var admin = Admin();
        var topic = NewTopic();
        foreach (var validateOnly in new[] { true, false })
        {
            var refused = await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync(
                [new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1, Configs = new() { ["retention.bytes"] = "1000", [name] = value } }],
                new CreateTopicsOptions { ValidateOnly = validateOnly }));
            var result = refused.Results.Single();
            Assert.Equal(ErrorCode.InvalidConfig, result.Error.Code);
            Assert.Equal(message, result.Error.Reason);
        }

        Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == topic);
        Assert.False(Directory.Exists(Path.Combine(shared.Broker.DataDir, topic + "-0")));
    }

    [Fact]
    public async Task GoodConfigsPassValidateOnlyWithoutCreatingAndThenCreate()
    {
        using var admin = Admin();
        var topic = NewTopic();
        var spec = new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1, Configs = new() { ["cleanup.policy"] = "compact,delete", ["retention.ms"] = "-1", ["min.cleanable.dirty.ratio"] = "0.25" } };
        await admin.CreateTopicsAsync([spec], new CreateTopicsOptions { ValidateOnly = true });
        Assert.DoesNotContain(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == topic);
        await admin.CreateTopicsAsync([spec]);
        Assert.Contains(admin.GetMetadata(TimeSpan.FromSeconds(10)).Topics, t => t.Topic == topic);
    }

    [Fact]
    public async Task AlterConfigsChecksValuesWithTheSameDefinition()
    {
        using var admin = Admin();
        var topic = NewTopic();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);
        var resource = new ConfigResource { Type = ResourceType.Topic, Name = topic };

        var incremental = await Assert.ThrowsAsync<IncrementalAlterConfigsException>(() => admin.IncrementalAlterConfigsAsync(
            new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = [new ConfigEntry { Name = "retention.ms", Value = "abc", IncrementalOperation = AlterConfigOpType.Set }] }));
        Assert.Equal(ErrorCode.InvalidConfig, incremental.Results.Single().Error.Code);
        Assert.Equal("Invalid value abc for configuration retention.ms: Not a number of type LONG", incremental.Results.Single().Error.Reason);

#pragma warning disable CS0618 // AlterConfigs is deprecated in the client, still served by Kafka and Moldau
        var whole = await Assert.ThrowsAsync<AlterConfigsException>(() => admin.AlterConfigsAsync(
            new Dictionary<ConfigResource, List<ConfigEntry>> { [resource] = [new ConfigEntry { Name = "message.timestamp.type", Value = "WallClock" }] }));
#pragma warning restore CS0618
        Assert.Equal(ErrorCode.InvalidConfig, whole.Results.Single().Error.Code);
        Assert.Equal("Invalid value WallClock for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime", whole.Results.Single().Error.Reason);

        var described = await admin.DescribeConfigsAsync([resource]);
        Assert.Equal("604800000", described.Single().Entries["retention.ms"].Value);
    }
}
