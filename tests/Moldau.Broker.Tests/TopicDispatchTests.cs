using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>Topic administration and cluster description through the dispatcher, as an admin client sees them.</summary>
public sealed class TopicDispatchTests : IAsyncLifetime
{
    private BrokerHarness _broker = null!;

    public Task InitializeAsync()
    {
        _broker = BrokerHarness.Start(o => o.AutoCreateTopicsEnable = false);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => _broker.SendAsync<T>(key, version, request);

    private static CreateTopicsRequest.CreatableTopic Topic(string name, int partitions = 1, short replicationFactor = 1, params (string Name, string? Value)[] configs) => new()
    {
        Name = name,
        NumPartitions = partitions,
        ReplicationFactor = replicationFactor,
        Configs = [.. configs.Select(c => new CreateTopicsRequest.CreatableTopicConfig { Name = c.Name, Value = c.Value })],
    };

    private async Task<CreateTopicsResponse.CreatableTopicResult> CreateAsync(short version, CreateTopicsRequest.CreatableTopic topic, bool validateOnly = false) =>
        Assert.Single((await Send<CreateTopicsResponse>(ApiKey.CreateTopics, version, new CreateTopicsRequest { Topics = [topic], TimeoutMs = 1000, ValidateOnly = validateOnly })).Topics);

    private async Task<MetadataResponse.MetadataResponseTopic> MetadataAsync(string name) =>
        Assert.Single((await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = name }] })).Topics);

    [Fact]
    [Covers(ApiKey.CreateTopics)]
    [Covers(ApiKey.Metadata)]
    public async Task CreateTopicsAtTheLowestAndHighestVersionLaysOutTheTopicMetadataShows()
    {
        // v0: name and error code only.
        var v0 = await CreateAsync(0, Topic("old", partitions: 3));
        Assert.Equal(("old", (short)0), (v0.Name, v0.ErrorCode));
        var old = Assert.Single((await Send<MetadataResponse>(ApiKey.Metadata, 0, new MetadataRequest { Topics = [new() { Name = "old" }] })).Topics);
        Assert.Equal((short)0, old.ErrorCode);
        Assert.Equal([0, 1, 2], old.Partitions.Select(p => p.PartitionIndex));
        Assert.All(old.Partitions, p => Assert.Equal((1, 1, 1), (p.LeaderId, Assert.Single(p.ReplicaNodes), Assert.Single(p.IsrNodes))));

        // v7 (flexible): -1 takes num.partitions and the one replica there is; the id comes back.
        var v7 = await CreateAsync(7, Topic("new", partitions: -1, replicationFactor: -1, ("cleanup.policy", "compact")));
        Assert.Equal((short)0, v7.ErrorCode);
        Assert.Null(v7.ErrorMessage);
        Assert.Equal((2, (short)1), (v7.NumPartitions, v7.ReplicationFactor));
        Assert.NotEqual(Uuid.Zero, v7.TopicId);
        Assert.Contains(v7.Configs!, c => c.Name == "cleanup.policy" && c.Value == "compact");

        // Metadata v12 finds it by that id, and by name with the same id.
        var byId = Assert.Single((await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { TopicId = v7.TopicId, Name = null }] })).Topics);
        Assert.Equal(("new", v7.TopicId, (short)0, 2), (byId.Name, byId.TopicId, byId.ErrorCode, byId.Partitions.Count));
        Assert.Equal(v7.TopicId, (await MetadataAsync("new")).TopicId);
        Assert.True(Directory.Exists(Path.Combine(_broker.LogDir, "new-1")));
    }

    [Fact]
    [Covers(ApiKey.CreateTopics)]
    public async Task ValidateOnlyAnswersAsACreateWouldAndCreatesNothing()
    {
        var checkedOnly = await CreateAsync(7, Topic("maybe", partitions: 4), validateOnly: true);
        Assert.Equal(((short)0, 4, (short)1), (checkedOnly.ErrorCode, checkedOnly.NumPartitions, checkedOnly.ReplicationFactor));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await MetadataAsync("maybe")).ErrorCode);
        Assert.False(Directory.Exists(Path.Combine(_broker.LogDir, "maybe-0")));

        // Validation still refuses what a create would refuse.
        var invalid = await CreateAsync(7, Topic("maybe", configs: ("retention.ms", "soon")), validateOnly: true);
        Assert.Equal((short)ErrorCode.InvalidConfig, invalid.ErrorCode);

        // And the real create afterwards succeeds.
        Assert.Equal((short)0, (await CreateAsync(7, Topic("maybe", partitions: 4))).ErrorCode);
        Assert.Equal(4, (await MetadataAsync("maybe")).Partitions.Count);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [Covers(ApiKey.CreateTopics)]
    public async Task CreateTopicsRefusesWhatKafkaRefuses(short version)
    {
        Assert.Equal((short)0, (await CreateAsync(version, Topic("taken"))).ErrorCode);

        async Task<ErrorCode> ErrorFor(CreateTopicsRequest.CreatableTopic t) => (ErrorCode)(await CreateAsync(version, t)).ErrorCode;
        Assert.Equal(ErrorCode.TopicAlreadyExists, await ErrorFor(Topic("taken")));
        Assert.Equal(ErrorCode.InvalidPartitions, await ErrorFor(Topic("zero", partitions: 0)));
        Assert.Equal(ErrorCode.InvalidReplicationFactor, await ErrorFor(Topic("three", replicationFactor: 3)));
        Assert.Equal(ErrorCode.InvalidConfig, await ErrorFor(Topic("badvalue", configs: ("retention.ms", "soon"))));
        Assert.Equal(ErrorCode.InvalidConfig, await ErrorFor(Topic("badpolicy", configs: ("cleanup.policy", "shred"))));
        Assert.Equal(ErrorCode.InvalidConfig, await ErrorFor(Topic("unknownkey", configs: ("no.such.config", "1"))));
        Assert.Equal(ErrorCode.InvalidTopicException, await ErrorFor(Topic("no/slashes")));
        Assert.Equal(ErrorCode.InvalidRequest, await ErrorFor(Topic("__cluster_metadata")));

        // The same name twice in one request: refused once, as Kafka's controller answers, and
        // not created; the other topics of the request are.
        var twice = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, version, new CreateTopicsRequest { Topics = [Topic("dup"), Topic("single"), Topic("dup")], TimeoutMs = 1000 });
        Assert.Equal([("single", (short)0), ("dup", (short)ErrorCode.InvalidRequest)], twice.Topics.Select(t => (t.Name, t.ErrorCode)).OrderByDescending(t => t.Name));
        Assert.Equal((short)0, (await MetadataAsync("single")).ErrorCode);

        // None of the refused topics exists.
        foreach (var name in new[] { "zero", "three", "badvalue", "badpolicy", "unknownkey", "dup" })
        {
            Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await MetadataAsync(name)).ErrorCode);
        }
    }

    [Fact]
    [Covers(ApiKey.DeleteTopics)]
    public async Task DeleteTopicsByNameThenByIdAndMetadataNoLongerKnowsThem()
    {
        await CreateAsync(7, Topic("by-name", partitions: 2));
        var byId = await CreateAsync(7, Topic("by-id"));

        // v0: names only.
        var v0 = Assert.Single((await Send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 0, new DeleteTopicsRequest { TopicNames = ["by-name"], TimeoutMs = 1000 })).Responses);
        Assert.Equal(("by-name", (short)0), (v0.Name, v0.ErrorCode));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await MetadataAsync("by-name")).ErrorCode);
        Assert.False(Directory.Exists(Path.Combine(_broker.LogDir, "by-name-0")));

        // v6: by id; the answer names the topic.
        var v6 = Assert.Single((await Send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 6, new DeleteTopicsRequest { Topics = [new() { Name = null, TopicId = byId.TopicId }], TimeoutMs = 1000 })).Responses);
        Assert.Equal(("by-id", byId.TopicId, (short)0), (v6.Name, v6.TopicId, v6.ErrorCode));
        var gone = Assert.Single((await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { TopicId = byId.TopicId, Name = null }] })).Topics);
        Assert.Equal((short)ErrorCode.UnknownTopicId, gone.ErrorCode);

        // Unknown names and ids.
        var unknown = await Send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 6, new DeleteTopicsRequest { Topics = [new() { Name = "never" }, new() { Name = null, TopicId = byId.TopicId }], TimeoutMs = 1000 });
        Assert.Equal([(short)ErrorCode.UnknownTopicOrPartition, (short)ErrorCode.UnknownTopicId], unknown.Responses.Select(r => r.ErrorCode));
        var unknownV0 = Assert.Single((await Send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 0, new DeleteTopicsRequest { TopicNames = ["never"], TimeoutMs = 1000 })).Responses);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, unknownV0.ErrorCode);

        // A name can be used again, and gets a new id.
        var again = await CreateAsync(7, Topic("by-id"));
        Assert.Equal((short)0, again.ErrorCode);
        Assert.NotEqual(byId.TopicId, again.TopicId);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [Covers(ApiKey.CreatePartitions)]
    public async Task CreatePartitionsGrowsATopicAndRefusesToShrinkIt(short version)
    {
        await CreateAsync(7, Topic("growing", partitions: 2));
        async Task<CreatePartitionsResponse.CreatePartitionsTopicResult> Grow(string name, int count, bool validateOnly = false) =>
            Assert.Single((await Send<CreatePartitionsResponse>(ApiKey.CreatePartitions, version, new CreatePartitionsRequest { Topics = [new() { Name = name, Count = count }], TimeoutMs = 1000, ValidateOnly = validateOnly })).Results);

        var checkedOnly = await Grow("growing", 8, validateOnly: true);
        Assert.Equal(("growing", (short)0), (checkedOnly.Name, checkedOnly.ErrorCode));
        Assert.Equal(2, (await MetadataAsync("growing")).Partitions.Count);

        Assert.Equal((short)0, (await Grow("growing", 5)).ErrorCode);
        Assert.Equal([0, 1, 2, 3, 4], (await MetadataAsync("growing")).Partitions.Select(p => p.PartitionIndex));
        var produced = await Send<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = 1,
            TopicData = [new() { Name = "growing", PartitionData = [new() { Index = 4, Records = ApiCoverageTests.OneRecord() }] }],
        });
        Assert.Equal(((short)0, 0L), (produced.Responses[0].PartitionResponses[0].ErrorCode, produced.Responses[0].PartitionResponses[0].BaseOffset));

        Assert.Equal((short)ErrorCode.InvalidPartitions, (await Grow("growing", 5)).ErrorCode);
        Assert.Equal((short)ErrorCode.InvalidPartitions, (await Grow("growing", 3)).ErrorCode);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await Grow("absent", 3)).ErrorCode);
        Assert.Equal(5, (await MetadataAsync("growing")).Partitions.Count);
    }

    [Fact]
    [Covers(ApiKey.Metadata)]
    public async Task MetadataDescribesTheClusterAndAnswersUnknownTopicsWithoutCreatingThem()
    {
        await CreateAsync(7, Topic("known", partitions: 2));
        var all = await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        var broker = Assert.Single(all.Brokers);
        Assert.Equal((1, "broker.test", 9092), (broker.NodeId, broker.Host, broker.Port));
        Assert.Equal(1, all.ControllerId);
        Assert.False(string.IsNullOrEmpty(all.ClusterId));
        Assert.Contains(all.Topics, t => t.Name == "known" && !t.IsInternal && t.Partitions.Count == 2);

        // v0: an empty list is every topic.
        var v0 = await Send<MetadataResponse>(ApiKey.Metadata, 0, new MetadataRequest { Topics = [] });
        Assert.Contains(v0.Topics, t => t.Name == "known");

        // v12: an empty list is none.
        Assert.Empty((await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [] })).Topics);

        var answers = await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest
        {
            Topics = [new() { Name = "unknown" }, new() { Name = "in valid" }, new() { Name = null, TopicId = Uuid.NewRandom() }],
            AllowAutoTopicCreation = true, // refused: auto.create.topics.enable=false
        });
        Assert.Equal([(short)ErrorCode.UnknownTopicOrPartition, (short)ErrorCode.InvalidTopicException, (short)ErrorCode.UnknownTopicId], answers.Topics.Select(t => t.ErrorCode));
        Assert.Null(answers.Topics[2].Name);
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await MetadataAsync("unknown")).ErrorCode);
    }

    [Fact]
    [Covers(ApiKey.Metadata)]
    public async Task MetadataCreatesATopicWhenAskedAndAllowed()
    {
        await using var broker = BrokerHarness.Start(o => o.NumPartitions = 3);
        var refused = await broker.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "auto" }], AllowAutoTopicCreation = false });
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, refused.Topics.Single().ErrorCode);

        var created = Assert.Single((await broker.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "auto" }], AllowAutoTopicCreation = true })).Topics);
        Assert.Equal(((short)0, 3), (created.ErrorCode, created.Partitions.Count));
        Assert.NotEqual(Uuid.Zero, created.TopicId);

        // Before v4 there is no flag and the broker always creates (when it may).
        var v1 = Assert.Single((await broker.SendAsync<MetadataResponse>(ApiKey.Metadata, 1, new MetadataRequest { Topics = [new() { Name = "auto-v1" }] })).Topics);
        Assert.Equal(((short)0, 3), (v1.ErrorCode, v1.Partitions.Count));
    }

    [Fact]
    [Covers(ApiKey.DescribeTopicPartitions)]
    public async Task DescribeTopicPartitionsSortsTopicsAndPagesWithACursor()
    {
        await CreateAsync(7, Topic("b-topic", partitions: 3));
        var a = await CreateAsync(7, Topic("a-topic", partitions: 2));
        var first = await Send<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest
        {
            Topics = [new() { Name = "b-topic" }, new() { Name = "a-topic" }, new() { Name = "c-missing" }],
            ResponsePartitionLimit = 3,
        });
        Assert.Equal(["a-topic", "b-topic"], first.Topics.Select(t => t.Name));
        Assert.Equal(a.TopicId, first.Topics[0].TopicId);
        Assert.Equal([0, 1], first.Topics[0].Partitions.Select(p => p.PartitionIndex));
        Assert.Equal([0], first.Topics[1].Partitions.Select(p => p.PartitionIndex));
        Assert.All(first.Topics.SelectMany(t => t.Partitions), p => Assert.Equal((short)0, p.ErrorCode));
        Assert.All(first.Topics.SelectMany(t => t.Partitions), p => Assert.Equal((1, 0), (p.LeaderId, p.LeaderEpoch)));
        Assert.Equal(("b-topic", 1), (first.NextCursor!.TopicName, first.NextCursor.PartitionIndex));

        var rest = await Send<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest
        {
            Topics = [new() { Name = "b-topic" }, new() { Name = "a-topic" }, new() { Name = "c-missing" }],
            ResponsePartitionLimit = 3,
            Cursor = new() { TopicName = "b-topic", PartitionIndex = 1 },
        });
        Assert.Equal(["b-topic", "c-missing"], rest.Topics.Select(t => t.Name));
        Assert.Equal([1, 2], rest.Topics[0].Partitions.Select(p => p.PartitionIndex));
        Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, rest.Topics[1].ErrorCode);
        Assert.Null(rest.NextCursor);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [Covers(ApiKey.DescribeCluster)]
    public async Task DescribeClusterNamesThisNodeAsTheClusterAndItsController(short version)
    {
        var metadata = await Send<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [] });
        var plain = await Send<DescribeClusterResponse>(ApiKey.DescribeCluster, version, new DescribeClusterRequest());
        Assert.Equal((short)0, plain.ErrorCode);
        Assert.Equal((metadata.ClusterId, 1), (plain.ClusterId, plain.ControllerId));
        var broker = Assert.Single(plain.Brokers);
        Assert.Equal((1, "broker.test", 9092), (broker.BrokerId, broker.Host, broker.Port));
        Assert.Equal(int.MinValue, plain.ClusterAuthorizedOperations); // not asked for

        var withOperations = await Send<DescribeClusterResponse>(ApiKey.DescribeCluster, version, new DescribeClusterRequest { IncludeClusterAuthorizedOperations = true });
        Assert.NotEqual(int.MinValue, withOperations.ClusterAuthorizedOperations);
        Assert.NotEqual(0, withOperations.ClusterAuthorizedOperations);
    }

    [Fact]
    [Covers(ApiKey.DescribeCluster)]
    public async Task DescribeClusterRefusesToDescribeControllersAsKafkaBrokersDo()
    {
        // KIP-919: controllers are described by a controller; a broker answers MISMATCHED_ENDPOINT_TYPE.
        var controllers = await Send<DescribeClusterResponse>(ApiKey.DescribeCluster, 1, new DescribeClusterRequest { EndpointType = 2 });
        Assert.Equal((short)ErrorCode.MismatchedEndpointType, controllers.ErrorCode);
        Assert.Empty(controllers.Brokers);
        var unknown = await Send<DescribeClusterResponse>(ApiKey.DescribeCluster, 1, new DescribeClusterRequest { EndpointType = 7 });
        Assert.Equal((short)ErrorCode.UnsupportedEndpointType, unknown.ErrorCode);
        Assert.Equal((short)0, (await Send<DescribeClusterResponse>(ApiKey.DescribeCluster, 1, new DescribeClusterRequest { EndpointType = 1 })).ErrorCode);
    }
}
