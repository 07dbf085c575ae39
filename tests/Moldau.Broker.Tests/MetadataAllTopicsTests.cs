using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>
/// A Metadata request for every topic, whose entries the handler keeps per topic while its
/// partitions are online (<c>DescribedTopics</c>): the answer is the same as the per-topic
/// answers, in name order, and follows every change of the topics and of their partitions' state.
/// </summary>
public sealed class MetadataAllTopicsTests : IAsyncLifetime
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

    private async Task CreateAsync(string name, int partitions)
    {
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }],
            TimeoutMs = 1000,
        });
        Assert.Equal((short)0, Assert.Single(created.Topics).ErrorCode);
    }

    private async Task<List<MetadataResponse.MetadataResponseTopic>> AllAsync(short version = 12) =>
        (await Send<MetadataResponse>(ApiKey.Metadata, version, new MetadataRequest { Topics = version == 0 ? [] : null })).Topics;

    private async Task<MetadataResponse.MetadataResponseTopic> OneAsync(string name, short version = 12) =>
        Assert.Single((await Send<MetadataResponse>(ApiKey.Metadata, version, new MetadataRequest { Topics = [new() { Name = name }] })).Topics);

    /// <summary>Everything an entry says, as text, so two answers compare field by field.</summary>
    private static string Text(MetadataResponse.MetadataResponseTopic t) =>
        $"{t.Name} {t.TopicId} e{t.ErrorCode} internal={t.IsInternal} ops={t.TopicAuthorizedOperations}: "
        + string.Join("; ", t.Partitions.Select(p =>
            $"{p.PartitionIndex} e{p.ErrorCode} leader={p.LeaderId} epoch={p.LeaderEpoch} replicas=[{string.Join(',', p.ReplicaNodes)}] isr=[{string.Join(',', p.IsrNodes)}] offline=[{string.Join(',', p.OfflineReplicas)}]"));

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(12)]
    public async Task AllTopicsAnswerIsThePerTopicAnswersInNameOrder(short version)
    {
        await CreateAsync("zeta", 3);
        await CreateAsync("alpha", 2);
        await CreateAsync("Beta", 1);
        await CreateAsync("mid", 5);

        // Twice: the first answer makes the entries, the second reuses them.
        foreach (var round in new[] { 1, 2 })
        {
            var all = await AllAsync(version);
            Assert.Equal(["Beta", "alpha", "mid", "zeta"], all.Select(t => t.Name));
            foreach (var topic in all)
            {
                Assert.Equal(Text(await OneAsync(topic.Name!, version)), Text(topic));
            }

            Assert.Equal([1, 2, 5, 3], all.Select(t => t.Partitions.Count));
            Assert.All(all.SelectMany(t => t.Partitions), p => Assert.Equal(((short)0, 1), (p.ErrorCode, p.LeaderId)));
        }
    }

    [Fact]
    public async Task AllTopicsAnswerFollowsCreateDeleteAndNewPartitions()
    {
        await CreateAsync("one", 2);
        await CreateAsync("two", 1);
        Assert.Equal(["one", "two"], (await AllAsync()).Select(t => t.Name));

        await CreateAsync("three", 4);
        var afterCreate = await AllAsync();
        Assert.Equal(["one", "three", "two"], afterCreate.Select(t => t.Name));
        Assert.Equal([0, 1, 2, 3], afterCreate[1].Partitions.Select(p => p.PartitionIndex));

        var deleted = await Send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 6, new DeleteTopicsRequest { Topics = [new() { Name = "one" }], TimeoutMs = 1000 });
        Assert.Equal((short)0, Assert.Single(deleted.Responses).ErrorCode);
        Assert.Equal(["three", "two"], (await AllAsync()).Select(t => t.Name));

        var grown = await Send<CreatePartitionsResponse>(ApiKey.CreatePartitions, 3, new CreatePartitionsRequest { Topics = [new() { Name = "two", Count = 3 }], TimeoutMs = 1000 });
        Assert.Equal((short)0, Assert.Single(grown.Results).ErrorCode);
        var afterGrow = await AllAsync();
        Assert.Equal([0, 1, 2], afterGrow[1].Partitions.Select(p => p.PartitionIndex));
        Assert.Equal(Text(await OneAsync("two")), Text(afterGrow[1]));

        // A topic of the same name made again is a new topic: its new id, not the kept entry.
        var oldId = afterGrow[0].TopicId;
        await Send<DeleteTopicsResponse>(ApiKey.DeleteTopics, 6, new DeleteTopicsRequest { Topics = [new() { Name = "three" }], TimeoutMs = 1000 });
        await CreateAsync("three", 1);
        var again = (await AllAsync())[0];
        Assert.Equal(("three", 1), (again.Name, again.Partitions.Count));
        Assert.NotEqual(oldId, again.TopicId);
    }

    [Fact]
    public async Task APartitionGoingOfflineAndBackShowsInTheAllTopicsAnswer()
    {
        await CreateAsync("flaky", 3);
        Assert.All((await AllAsync()).Single().Partitions, p => Assert.Equal((short)0, p.ErrorCode));

        // Partition 1 as it is when its log could not be opened (no retry while the test looks).
        var host = _broker.Broker.State.Topics.Find("flaky")!.Partition(1)!.Host;
        var log = host.Log!;
        host.RetryOpenAt = long.MaxValue;
        host.OfflineReason = "test: the disk is gone";
        host.Log = null;
        try
        {
            var offline = (await AllAsync()).Single().Partitions;
            Assert.Equal(((short)ErrorCode.LeaderNotAvailable, -1, 1), (offline[1].ErrorCode, offline[1].LeaderId, Assert.Single(offline[1].OfflineReplicas)));
            Assert.Equal([(short)0, (short)0], new[] { offline[0].ErrorCode, offline[2].ErrorCode });
            Assert.Equal(Text(await OneAsync("flaky")), Text((await AllAsync()).Single()));
        }
        finally
        {
            host.Log = log;
            host.OfflineReason = null;
        }

        var back = (await AllAsync()).Single().Partitions;
        Assert.All(back, p => Assert.Equal(((short)0, 1), (p.ErrorCode, p.LeaderId)));
    }
}
