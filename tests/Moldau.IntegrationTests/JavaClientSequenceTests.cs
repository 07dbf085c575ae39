using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>
/// The Java client can't be installed here, so its defaults are replayed at the protocol level:
/// ApiVersions v4, Metadata v12, InitProducerId before the first produce (idempotence is on by
/// default), Produce v11 with acks=all, FindCoordinator v6 (batched), JoinGroup v9 / SyncGroup v5,
/// OffsetCommit v9, OffsetFetch v9, ListOffsets v10 and Fetch v17 by topic id.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class JavaClientSequenceTests(SharedBroker shared)
{
    [Fact]
    public async Task TheJavaClientsDefaultSequenceWorks()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var topic = "java-" + Guid.NewGuid().ToString("N")[..8];

        var versions = await client.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 4, new ApiVersionsRequest { ClientSoftwareName = "apache-kafka-java", ClientSoftwareVersion = "4.0.0" });
        var served = versions.ApiKeys.ToDictionary(k => (ApiKey)k.ApiKey, k => k.MaxVersion);
        Assert.True(served[ApiKey.Produce] >= 11 && served[ApiKey.Fetch] >= 17 && served[ApiKey.Metadata] >= 12 && served[ApiKey.InitProducerId] >= 5);

        var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = topic }], AllowAutoTopicCreation = true });
        var topicId = metadata.Topics.Single().TopicId;
        Assert.False(topicId.IsZero);

        var init = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = int.MaxValue });
        Assert.Equal(0, init.ErrorCode);

        var batch = RecordBatchBuilder.Build(
            [new(Encoding.UTF8.GetBytes("key"), Encoding.UTF8.GetBytes("value"), 1_700_000_000_000, [("h", Encoding.UTF8.GetBytes("1"))])],
            producerId: init.ProducerId,
            producerEpoch: init.ProducerEpoch,
            baseSequence: 0);
        var produced = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 30000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        Assert.Equal((0, 0L), (produced.Responses.Single().PartitionResponses.Single().ErrorCode, produced.Responses.Single().PartitionResponses.Single().BaseOffset));

        var coordinator = await client.SendAsync<FindCoordinatorResponse>(ApiKey.FindCoordinator, 6, new FindCoordinatorRequest { KeyType = 0, CoordinatorKeys = ["java-group"] });
        Assert.Equal((0, 1), (coordinator.Coordinators.Single().ErrorCode, coordinator.Coordinators.Single().NodeId));

        // KIP-394: the first join gets a member id and MEMBER_ID_REQUIRED, the second joins.
        var join = new JoinGroupRequest
        {
            GroupId = "java-group",
            SessionTimeoutMs = 45000,
            RebalanceTimeoutMs = 300000,
            ProtocolType = "consumer",
            Protocols = [new() { Name = "range", Metadata = [0, 3, 0, 0, 0, 0, 0, 0, 0, 0] }],
        };
        var first = await client.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 9, join);
        Assert.Equal((short)ErrorCode.MemberIdRequired, first.ErrorCode);
        join.MemberId = first.MemberId;
        var joined = await client.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 9, join);
        Assert.Equal(0, joined.ErrorCode);
        Assert.Equal(joined.MemberId, joined.Leader);
        Assert.Equal("range", joined.ProtocolName);
        var sync = await client.SendAsync<SyncGroupResponse>(ApiKey.SyncGroup, 5, new SyncGroupRequest
        {
            GroupId = "java-group",
            GenerationId = joined.GenerationId,
            MemberId = joined.MemberId,
            ProtocolType = "consumer",
            ProtocolName = "range",
            Assignments = [new() { MemberId = joined.MemberId, Assignment = [0, 3, 1, 2, 3] }],
        });
        Assert.Equal(0, sync.ErrorCode);
        Assert.Equal(new byte[] { 0, 3, 1, 2, 3 }, sync.Assignment);

        var commit = await client.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 9, new OffsetCommitRequest
        {
            GroupId = "java-group",
            GenerationIdOrMemberEpoch = joined.GenerationId,
            MemberId = joined.MemberId,
            Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1, CommittedMetadata = "m" }] }],
        });
        Assert.Equal(0, commit.Topics.Single().Partitions.Single().ErrorCode);
        var fetched = await client.SendAsync<OffsetFetchResponse>(ApiKey.OffsetFetch, 9, new OffsetFetchRequest
        {
            Groups = [new() { GroupId = "java-group", MemberId = joined.MemberId, MemberEpoch = joined.GenerationId, Topics = null }],
        });
        var committed = fetched.Groups.Single().Topics.Single().Partitions.Single();
        Assert.Equal((1L, "m"), (committed.CommittedOffset, committed.Metadata));

        var offsets = await client.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 10, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] });
        Assert.Equal(1, offsets.Topics.Single().Partitions.Single().Offset);

        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 17, new FetchRequest
        {
            ReplicaId = -1,
            MaxWaitMs = 500,
            MinBytes = 1,
            MaxBytes = 52428800,
            SessionId = 0,
            SessionEpoch = 0,
            Topics = [new() { TopicId = topicId, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1048576, CurrentLeaderEpoch = 0 }] }],
        });
        var p = fetch.Responses.Single().Partitions.Single();
        Assert.Equal(0, p.ErrorCode);
        var stored = new RecordBatch(p.Records!.Value);
        Assert.Equal(init.ProducerId, stored.ProducerId);
        var records = new List<Moldau.Protocol.Records.Record>();
        foreach (var r in stored.GetRecords())
        {
            records.Add(r);
        }

        var record = Assert.Single(records);
        Assert.Equal("value", Encoding.UTF8.GetString(record.Value!.Value.Span));
        Assert.Equal("h", record.Headers.Single().Key);
    }
}
