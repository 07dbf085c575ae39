using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Metadata;
using Moldau.Protocol.Records;
using Moldau.Storage.Metadata;

namespace Moldau.IntegrationTests;

/// <summary>
/// Internal topic names (issue 9, item 1): <c>__cluster_metadata</c> is never a topic,
/// <c>__consumer_offsets</c> is created by the broker only and never written by a client, and
/// topic names that collide once '.' and '_' are alike are refused, as Kafka refuses them.
/// </summary>
public sealed class InternalTopicTests
{
    private const string MetadataLog = "__cluster_metadata-0";

    private static string Kcat() =>
        ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed; scripts/test.sh installs it (apt-get install kcat)");

    private static Task<CreateTopicsResponse> CreateAsync(KafkaTestClient client, string name, bool validateOnly = false, int partitions = 1) =>
        client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1 }],
            ValidateOnly = validateOnly,
        });

    private static async Task<MetadataResponse.MetadataResponseTopic> MetadataAsync(KafkaTestClient client, string name) =>
        (await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = name }], AllowAutoTopicCreation = true })).Topics.Single();

    private static List<string> TopicRecordNames(string dataDir) =>
        MetadataLogReader.ReadAll(Path.Combine(dataDir, MetadataLog))
            .Where(r => r.RecordType == TopicRecord.SpecApiKey)
            .Select(r => KafkaMessageExtensions.Decode<TopicRecord>(r.Body, r.RecordVersion).Name)
            .ToList();

    /// <summary>The broker's output lines that match, once at least one has arrived (its stdout is read asynchronously).</summary>
    private static async Task<List<string>> OutputLinesAsync(BrokerProcess broker, Func<string, bool> match)
    {
        for (var i = 0; i < 100 && !broker.Output.Split('\n').Any(match); i++)
        {
            await Task.Delay(100);
        }

        return broker.Output.Split('\n').Where(match).ToList();
    }

    [Fact]
    public async Task KcatCannotWriteTheMetadataLogAndTopicsMadeAfterwardsSurviveARestart()
    {
        await using var broker = await BrokerProcess.StartAsync();
        var produce = await ExternalTool.RunAsync(
            Kcat(),
            ["-P", "-b", broker.BootstrapServers, "-t", "__cluster_metadata", "-X", "topic.metadata.propagation.max.ms=1000", "-X", "message.timeout.ms=3000"],
            "x\n");
        Assert.NotEqual(0, produce.ExitCode);

        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, (await MetadataAsync(client, "__cluster_metadata")).ErrorCode);
            var created = (await CreateAsync(client, "__cluster_metadata")).Topics.Single();
            Assert.Equal((short)ErrorCode.InvalidRequest, created.ErrorCode);
            Assert.Equal("Creation of internal topic __cluster_metadata is prohibited.", created.ErrorMessage);
            var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("x"), 1)]);
            var written = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
            {
                Acks = -1,
                TopicData = [new() { Name = "__cluster_metadata", PartitionData = [new() { Index = 0, Records = batch }] }],
            });
            Assert.Equal((short)ErrorCode.UnknownTopicOrPartition, written.Responses.Single().PartitionResponses.Single().ErrorCode);
            Assert.Equal(0, (await CreateAsync(client, "made-after")).Topics.Single().ErrorCode);
        }

        // Only the metadata log's own directory, and no topic of that name in it.
        Assert.Equal([MetadataLog, "made-after-0"], Directory.GetDirectories(broker.DataDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["made-after"], TopicRecordNames(broker.DataDir));

        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var after = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal(["made-after"], after.Topics.Select(t => t.Name));
    }

    [Fact]
    public async Task GarbageAppendedToTheMetadataLogIsCutWithOneLogLine()
    {
        await using var broker = await BrokerProcess.StartAsync();
        var input = string.Concat(Enumerable.Range(0, 20).Select(i => $"m{i}\n"));
        Assert.Equal(0, (await ExternalTool.RunAsync(Kcat(), ["-P", "-b", broker.BootstrapServers, "-t", "before"], input)).ExitCode);
        Assert.Equal(0, await broker.StopAsync());

        var segment = Path.Combine(broker.DataDir, MetadataLog, "00000000000000000000.log");
        var garbage = new byte[300];
        new Random(9).NextBytes(garbage);
        await using (var file = new FileStream(segment, FileMode.Append))
        {
            await file.WriteAsync(garbage);
        }

        await broker.RestartAsync();
        var complaint = Assert.Single(await OutputLinesAsync(broker, l => l.Contains("is corrupt at byte", StringComparison.Ordinal)));
        Assert.Contains($"metadata log {segment} is corrupt at byte", complaint, StringComparison.Ordinal);
        var consumed = await ExternalTool.RunAsync(Kcat(), ["-C", "-b", broker.BootstrapServers, "-t", "before", "-o", "beginning", "-e", "-q"]);
        Assert.Equal(input, consumed.Stdout);

        // The cut makes room: a topic made now is read back by the next start, with no second complaint.
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.Equal(0, (await CreateAsync(client, "after")).Topics.Single().ErrorCode);
        }

        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        Assert.Single(await OutputLinesAsync(broker, l => l.Contains("is corrupt at byte", StringComparison.Ordinal)));
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var all = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal(["after", "before"], all.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task AWellFramedBatchWhoseRecordDoesNotDecodeStopsTheReplayThere()
    {
        var dataDir = BrokerProcess.NewDataDir();
        var metadataDir = Path.Combine(dataDir, MetadataLog);
        var good = Uuid.NewRandom();
        using (var writer = new MetadataLogWriter(metadataDir, TimeProvider.System))
        {
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "good", TopicId = good }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 0, TopicId = good, Replicas = [1], Isr = [1], Leader = 1 }.ToBytes(0)),
            ]);

            // A CRC-valid batch: a topic whose record is cut short, after a whole one.
            var lost = Uuid.NewRandom();
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "lost", TopicId = lost }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, [1]),
            ]);
        }

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        var complaint = Assert.Single(await OutputLinesAsync(broker, l => l.Contains("is corrupt at byte", StringComparison.Ordinal)));
        Assert.Contains("does not decode", complaint, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", broker.Output, StringComparison.Ordinal);
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var all = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal(["good"], all.Topics.Select(t => t.Name));
        Assert.Equal(["good"], TopicRecordNames(dataDir));
    }

    [Fact]
    public async Task HostileMetadataRecordsNeverReachTheFileSystem()
    {
        var dataDir = BrokerProcess.NewDataDir();
        var ok = Uuid.NewRandom();
        var escape = Uuid.NewRandom();
        var nul = Uuid.NewRandom();
        var wide = Uuid.NewRandom();
        using (var writer = new MetadataLogWriter(Path.Combine(dataDir, MetadataLog), TimeProvider.System))
        {
            static byte[] Partition(Uuid topic, int id) => new PartitionRecord { PartitionId = id, TopicId = topic, Replicas = [1], Isr = [1], Leader = 1 }.ToBytes(0);
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "ok", TopicId = ok }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, Partition(ok, 0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "../../escaped", TopicId = escape }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, Partition(escape, 0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "nul\0name", TopicId = nul }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, Partition(nul, 0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "wide", TopicId = wide }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, Partition(wide, 0)),
                (PartitionRecord.SpecApiKey, 0, Partition(wide, 9_999)),
                (PartitionRecord.SpecApiKey, 0, Partition(ok, int.MaxValue)),
            ]);
        }

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        await OutputLinesAsync(broker, l => l.Contains("metadata log:", StringComparison.Ordinal));
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var all = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal([("ok", 1), ("wide", 1)], all.Topics.Select(t => (t.Name!, t.Partitions.Count)).Order());
        Assert.Equal([MetadataLog, "ok-0", "wide-0"], Directory.GetDirectories(dataDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.False(Directory.Exists(Path.Combine(dataDir, "..", "..", "escaped-0")));
        Assert.Contains("TopicRecord with the illegal name '../../escaped' skipped", broker.Output, StringComparison.Ordinal);
        Assert.Contains("TopicRecord with the illegal name 'nul\\u0000name' skipped", broker.Output, StringComparison.Ordinal);
        Assert.Contains("PartitionRecord with partition id 2147483647", broker.Output, StringComparison.Ordinal);
        Assert.Contains("topic wide names partition 9999 but partition 1 has neither a record nor a log", broker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConsumerOffsetsIsNeverMadeByAClientAndCommitsWorkOnEveryPartition()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["offsets.topic.num.partitions"] = "5", ["offsets.topic.segment.bytes"] = "2097152" });
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);

        // A client's produce is refused before anything exists, and creates nothing.
        var batch = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"), 1)]);
        var written = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TopicData = [new() { Name = "__consumer_offsets", PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        Assert.Equal((short)ErrorCode.InvalidTopicException, written.Responses.Single().PartitionResponses.Single().ErrorCode);
        Assert.False(Directory.Exists(Path.Combine(broker.DataDir, "__consumer_offsets-0")));

        // Metadata creates it as the broker would: offsets.topic.num.partitions, compacted.
        var offsets = await MetadataAsync(client, "__consumer_offsets");
        Assert.Equal(0, offsets.ErrorCode);
        Assert.True(offsets.IsInternal);
        Assert.Equal(5, offsets.Partitions.Count);
        var configs = await client.SendAsync<DescribeConfigsResponse>(ApiKey.DescribeConfigs, 4, new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "__consumer_offsets", ConfigurationKeys = ["cleanup.policy", "segment.bytes"] }],
        });
        Assert.Equal([("cleanup.policy", "compact"), ("segment.bytes", "2097152")], configs.Results.Single().Configs.Select(c => (c.Name, c.Value)).Order());

        // Once it exists a client still can't write it.
        written = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TopicData = [new() { Name = "__consumer_offsets", PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        Assert.Equal((short)ErrorCode.InvalidTopicException, written.Responses.Single().PartitionResponses.Single().ErrorCode);

        // Groups hash to every partition; each commit works and is read back.
        Assert.Equal(0, (await CreateAsync(client, "committed")).Topics.Single().ErrorCode);
        for (var i = 0; i < 20; i++)
        {
            var group = $"group-{i}";
            var commit = await client.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 8, new OffsetCommitRequest
            {
                GroupId = group,
                GenerationIdOrMemberEpoch = -1,
                MemberId = string.Empty,
                Topics = [new() { Name = "committed", Partitions = [new() { PartitionIndex = 0, CommittedOffset = i + 1, CommittedMetadata = null }] }],
            });
            Assert.Equal(0, commit.Topics.Single().Partitions.Single().ErrorCode);
            var fetched = await client.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, 8, new OffsetFetchRequest
            {
                Groups = [new() { GroupId = group, Topics = [new() { Name = "committed", PartitionIndexes = [0] }] }],
            });
            Assert.Equal(i + 1, fetched.Groups.Single().Topics.Single().Partitions.Single().CommittedOffset);
        }

        // CreateTopics of it now: it exists. Of __transaction_state: the broker's settings, whatever was asked.
        Assert.Equal((short)ErrorCode.TopicAlreadyExists, (await CreateAsync(client, "__consumer_offsets")).Topics.Single().ErrorCode);
        var state = (await CreateAsync(client, "__transaction_state", partitions: 1)).Topics.Single();
        Assert.Equal(0, state.ErrorCode);
        Assert.Equal(50, state.NumPartitions);
    }

    [Fact]
    public async Task AConsumerOffsetsTopicMadeWithOnePartitionByAnOlderMoldauServesEveryGroup()
    {
        // What `kcat -L -t __consumer_offsets` used to leave behind: the topic with num.partitions (1).
        var dataDir = BrokerProcess.NewDataDir();
        var offsetsId = Uuid.NewRandom();
        var topicId = Uuid.NewRandom();
        using (var writer = new MetadataLogWriter(Path.Combine(dataDir, MetadataLog), TimeProvider.System))
        {
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "__consumer_offsets", TopicId = offsetsId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 0, TopicId = offsetsId, Replicas = [1], Isr = [1], Leader = 1 }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "committed", TopicId = topicId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 0, TopicId = topicId, Replicas = [1], Isr = [1], Leader = 1 }.ToBytes(0)),
            ]);
        }

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        for (var i = 0; i < 10; i++)
        {
            var commit = await client.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 8, new OffsetCommitRequest
            {
                GroupId = $"group-{i}",
                GenerationIdOrMemberEpoch = -1,
                MemberId = string.Empty,
                Topics = [new() { Name = "committed", Partitions = [new() { PartitionIndex = 0, CommittedOffset = i + 1, CommittedMetadata = null }] }],
            });
            Assert.Equal(0, commit.Topics.Single().Partitions.Single().ErrorCode);
        }

        Assert.Contains("__consumer_offsets has 1 partitions, not offsets.topic.num.partitions=50", (await OutputLinesAsync(broker, l => l.Contains("offsets.topic.num.partitions", StringComparison.Ordinal))).Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task NamesThatCollideOnDotAndUnderscoreAreRefused()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        Assert.Equal(0, (await CreateAsync(client, "a.b")).Topics.Single().ErrorCode);

        foreach (var validateOnly in new[] { true, false })
        {
            var refused = (await CreateAsync(client, "a_b", validateOnly)).Topics.Single();
            Assert.Equal((short)ErrorCode.InvalidTopicException, refused.ErrorCode);
            Assert.Equal("Topic 'a_b' collides with existing topic: a.b", refused.ErrorMessage);
        }

        Assert.Equal((short)ErrorCode.InvalidTopicException, (await MetadataAsync(client, "a_b")).ErrorCode);

        var kcat = await ExternalTool.RunAsync(
            Kcat(),
            ["-P", "-b", broker.BootstrapServers, "-t", "a_b", "-X", "topic.metadata.propagation.max.ms=1000", "-X", "message.timeout.ms=3000"],
            "x\n");
        Assert.NotEqual(0, kcat.ExitCode);
        Assert.Equal([MetadataLog, "a.b-0"], Directory.GetDirectories(broker.DataDir).Select(Path.GetFileName).Order(StringComparer.Ordinal));

        // The same characters elsewhere do not collide.
        Assert.Equal(0, (await CreateAsync(client, "a.c")).Topics.Single().ErrorCode);
    }
}
