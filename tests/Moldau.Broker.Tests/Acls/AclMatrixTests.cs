using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using static Moldau.Broker.Tests.Acls.AclApiTests;

namespace Moldau.Broker.Tests.Acls;

/// <summary>
/// The table of docs/security.md ("ACLs"), row by row: for each API, User:alice without the ACL the
/// row names gets the row's error; once the super user grants exactly that ACL, she no longer does.
/// </summary>
public sealed class AclMatrixTests
{
    private const string Alice = "User:alice";
    private const string Topic = "t";
    private const string Group = "g";
    private const string TransactionalId = "tx";

    /// <summary>What TxnOffsetCommit needs, all of it (Kafka's handleTxnOffsetCommitRequest): each of its rows is given the others.</summary>
    private static readonly (ResourceType Type, string Name, AclOperation Op)[] TxnOffsetCommitAcls =
    [
        (ResourceType.TransactionalId, TransactionalId, AclOperation.Write),
        (ResourceType.Group, Group, AclOperation.Read),
        (ResourceType.Topic, Topic, AclOperation.Read),
    ];

    /// <summary>One row: the API, the request, the ACL that opens it, the refusal without it, and where the response says it.</summary>
    internal sealed record Row(ApiKey Api, short Version, Func<IKafkaMessage> Request, (ResourceType Type, string Name, AclOperation Op) Needs, ErrorCode Refusal, Func<IKafkaMessage, ErrorCode> ErrorOf, (ResourceType Type, string Name, AclOperation Op)? Given = null)
    {
        public override string ToString() => $"{Api} needs {Needs.Op} on {Needs.Type} {Needs.Name}" + (Given is { } g ? $" (given {g.Op} on {g.Type} {g.Name})" : string.Empty);
    }

    private static readonly Dictionary<string, Row> Rows = new[]
    {
        new Row(ApiKey.Metadata, 12, () => new MetadataRequest { Topics = [new() { Name = Topic }], AllowAutoTopicCreation = false },
            (ResourceType.Topic, Topic, AclOperation.Describe), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((MetadataResponse)r).Topics[0].ErrorCode),
        new Row(ApiKey.Metadata, 12, () => new MetadataRequest { Topics = [new() { Name = "fresh" }], AllowAutoTopicCreation = true },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.Create), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((MetadataResponse)r).Topics[0].ErrorCode,
            Given: (ResourceType.Topic, "fresh", AclOperation.Describe)),
        new Row(ApiKey.Produce, 9, () => new ProduceRequest { Acks = 1, TimeoutMs = 1000, TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = ReadOnlyMemory<byte>.Empty }] }] },
            (ResourceType.Topic, Topic, AclOperation.Write), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((ProduceResponse)r).Responses[0].PartitionResponses[0].ErrorCode),
        new Row(ApiKey.Fetch, 12, () => new FetchRequest { ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }] },
            (ResourceType.Topic, Topic, AclOperation.Read), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((FetchResponse)r).Responses[0].Partitions[0].ErrorCode),
        new Row(ApiKey.ListOffsets, 7, () => new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] },
            (ResourceType.Topic, Topic, AclOperation.Describe), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((ListOffsetsResponse)r).Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.OffsetForLeaderEpoch, 4, () => new OffsetForLeaderEpochRequest { ReplicaId = -1, Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, LeaderEpoch = 0, CurrentLeaderEpoch = -1 }] }] },
            (ResourceType.Topic, Topic, AclOperation.Describe), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((OffsetForLeaderEpochResponse)r).Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.CreateTopics, 7, () => new CreateTopicsRequest { TimeoutMs = 1000, Topics = [new() { Name = "made", NumPartitions = 1, ReplicationFactor = 1 }] },
            (ResourceType.Topic, "made", AclOperation.Create), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((CreateTopicsResponse)r).Topics[0].ErrorCode),
        new Row(ApiKey.DeleteTopics, 5, () => new DeleteTopicsRequest { TimeoutMs = 1000, TopicNames = [Topic] },
            (ResourceType.Topic, Topic, AclOperation.Delete), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((DeleteTopicsResponse)r).Responses[0].ErrorCode),
        new Row(ApiKey.CreatePartitions, 3, () => new CreatePartitionsRequest { TimeoutMs = 1000, Topics = [new() { Name = Topic, Count = 2, Assignments = null }] },
            (ResourceType.Topic, Topic, AclOperation.Alter), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((CreatePartitionsResponse)r).Results[0].ErrorCode),
        new Row(ApiKey.DeleteRecords, 2, () => new DeleteRecordsRequest { TimeoutMs = 1000, Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Offset = 0 }] }] },
            (ResourceType.Topic, Topic, AclOperation.Delete), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((DeleteRecordsResponse)r).Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.DescribeConfigs, 4, () => new DescribeConfigsRequest { Resources = [new() { ResourceType = 2, ResourceName = Topic, ConfigurationKeys = null }] },
            (ResourceType.Topic, Topic, AclOperation.DescribeConfigs), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((DescribeConfigsResponse)r).Results[0].ErrorCode),
        new Row(ApiKey.DescribeConfigs, 4, () => new DescribeConfigsRequest { Resources = [new() { ResourceType = 4, ResourceName = "1", ConfigurationKeys = null }] },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.DescribeConfigs), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((DescribeConfigsResponse)r).Results[0].ErrorCode),
        new Row(ApiKey.AlterConfigs, 2, () => new AlterConfigsRequest { Resources = [new() { ResourceType = 2, ResourceName = Topic, Configs = [new() { Name = "retention.ms", Value = "1000" }] }] },
            (ResourceType.Topic, Topic, AclOperation.AlterConfigs), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((AlterConfigsResponse)r).Responses[0].ErrorCode),
        new Row(ApiKey.IncrementalAlterConfigs, 1, () => new IncrementalAlterConfigsRequest { Resources = [new() { ResourceType = 2, ResourceName = Topic, Configs = [new() { Name = "retention.ms", ConfigOperation = 0, Value = "1000" }] }] },
            (ResourceType.Topic, Topic, AclOperation.AlterConfigs), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((IncrementalAlterConfigsResponse)r).Responses[0].ErrorCode),
        new Row(ApiKey.FindCoordinator, 3, () => new FindCoordinatorRequest { Key = Group, KeyType = 0 },
            (ResourceType.Group, Group, AclOperation.Describe), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((FindCoordinatorResponse)r).ErrorCode),
        new Row(ApiKey.JoinGroup, 5, () => new JoinGroupRequest { GroupId = Group, SessionTimeoutMs = 10000, RebalanceTimeoutMs = 10000, MemberId = "m", ProtocolType = "consumer", Protocols = [new() { Name = "range", Metadata = new byte[] { 0, 0 } }] },
            (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((JoinGroupResponse)r).ErrorCode),
        new Row(ApiKey.Heartbeat, 3, () => new HeartbeatRequest { GroupId = Group, GenerationId = 1, MemberId = "m" },
            (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((HeartbeatResponse)r).ErrorCode),
        new Row(ApiKey.SyncGroup, 3, () => new SyncGroupRequest { GroupId = Group, GenerationId = 1, MemberId = "m" },
            (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((SyncGroupResponse)r).ErrorCode),
        new Row(ApiKey.LeaveGroup, 3, () => new LeaveGroupRequest { GroupId = Group, Members = [new() { MemberId = "m" }] },
            (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((LeaveGroupResponse)r).ErrorCode),
        new Row(ApiKey.OffsetCommit, 2, () => new OffsetCommitRequest { GroupId = Group, GenerationIdOrMemberEpoch = -1, MemberId = string.Empty, Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0 }] }] },
            (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((OffsetCommitResponse)r).Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.TxnOffsetCommit, 3, TxnOffsetCommit, (ResourceType.TransactionalId, TransactionalId, AclOperation.Write), ErrorCode.TransactionalIdAuthorizationFailed, TxnOffsetCommitError),
        new Row(ApiKey.TxnOffsetCommit, 3, TxnOffsetCommit, (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, TxnOffsetCommitError),
        new Row(ApiKey.TxnOffsetCommit, 3, TxnOffsetCommit, (ResourceType.Topic, Topic, AclOperation.Read), ErrorCode.TopicAuthorizationFailed, TxnOffsetCommitError),
        new Row(ApiKey.OffsetFetch, 5, () => new OffsetFetchRequest { GroupId = Group, Topics = null },
            (ResourceType.Group, Group, AclOperation.Describe), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((OffsetFetchResponse)r).ErrorCode),
        new Row(ApiKey.DescribeGroups, 5, () => new DescribeGroupsRequest { Groups = [Group] },
            (ResourceType.Group, Group, AclOperation.Describe), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((DescribeGroupsResponse)r).Groups[0].ErrorCode),
        new Row(ApiKey.DeleteGroups, 2, () => new DeleteGroupsRequest { GroupsNames = [Group] },
            (ResourceType.Group, Group, AclOperation.Delete), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((DeleteGroupsResponse)r).Results[0].ErrorCode),
        new Row(ApiKey.OffsetDelete, 0, () => new OffsetDeleteRequest { GroupId = Group, Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0 }] }] },
            (ResourceType.Group, Group, AclOperation.Delete), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((OffsetDeleteResponse)r).ErrorCode),
        new Row(ApiKey.InitProducerId, 4, () => new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000, ProducerId = -1, ProducerEpoch = -1 },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.IdempotentWrite), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((InitProducerIdResponse)r).ErrorCode),
        new Row(ApiKey.InitProducerId, 4, () => new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000, ProducerId = -1, ProducerEpoch = -1 },
            (ResourceType.Topic, Topic, AclOperation.Write), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((InitProducerIdResponse)r).ErrorCode),
        new Row(ApiKey.FindCoordinator, 3, () => new FindCoordinatorRequest { Key = TransactionalId, KeyType = 1 },
            (ResourceType.TransactionalId, TransactionalId, AclOperation.Describe), ErrorCode.TransactionalIdAuthorizationFailed, r => (ErrorCode)((FindCoordinatorResponse)r).ErrorCode),
        new Row(ApiKey.InitProducerId, 5, () => new InitProducerIdRequest { TransactionalId = TransactionalId, TransactionTimeoutMs = 60000, ProducerId = -1, ProducerEpoch = -1 },
            (ResourceType.TransactionalId, TransactionalId, AclOperation.Write), ErrorCode.TransactionalIdAuthorizationFailed, r => (ErrorCode)((InitProducerIdResponse)r).ErrorCode),
        new Row(ApiKey.AddPartitionsToTxn, 3, AddPartitions,
            (ResourceType.TransactionalId, TransactionalId, AclOperation.Write), ErrorCode.TransactionalIdAuthorizationFailed, r => (ErrorCode)((AddPartitionsToTxnResponse)r).ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode,
            Given: (ResourceType.Topic, Topic, AclOperation.Write)),
        new Row(ApiKey.AddPartitionsToTxn, 3, AddPartitions,
            (ResourceType.Topic, Topic, AclOperation.Write), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((AddPartitionsToTxnResponse)r).ResultsByTopicV3AndBelow[0].ResultsByPartition[0].PartitionErrorCode,
            Given: (ResourceType.TransactionalId, TransactionalId, AclOperation.Write)),
        new Row(ApiKey.AddPartitionsToTxn, 4, () => new AddPartitionsToTxnRequest { Transactions = [new() { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, VerifyOnly = true, Topics = [new() { Name = Topic, Partitions = [0] }] }] },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.ClusterAction), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((AddPartitionsToTxnResponse)r).ErrorCode),
        new Row(ApiKey.AddOffsetsToTxn, 4, () => new AddOffsetsToTxnRequest { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, GroupId = Group },
            (ResourceType.TransactionalId, TransactionalId, AclOperation.Write), ErrorCode.TransactionalIdAuthorizationFailed, r => (ErrorCode)((AddOffsetsToTxnResponse)r).ErrorCode,
            Given: (ResourceType.Group, Group, AclOperation.Read)),
        new Row(ApiKey.AddOffsetsToTxn, 4, () => new AddOffsetsToTxnRequest { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, GroupId = Group },
            (ResourceType.Group, Group, AclOperation.Read), ErrorCode.GroupAuthorizationFailed, r => (ErrorCode)((AddOffsetsToTxnResponse)r).ErrorCode,
            Given: (ResourceType.TransactionalId, TransactionalId, AclOperation.Write)),
        new Row(ApiKey.EndTxn, 4, () => new EndTxnRequest { TransactionalId = TransactionalId, ProducerId = 1, ProducerEpoch = 0, Committed = true },
            (ResourceType.TransactionalId, TransactionalId, AclOperation.Write), ErrorCode.TransactionalIdAuthorizationFailed, r => (ErrorCode)((EndTxnResponse)r).ErrorCode),
        new Row(ApiKey.WriteTxnMarkers, 1, WriteMarkers,
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.Alter), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((WriteTxnMarkersResponse)r).Markers[0].Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.WriteTxnMarkers, 1, WriteMarkers,
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.ClusterAction), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((WriteTxnMarkersResponse)r).Markers[0].Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.DescribeTransactions, 0, () => new DescribeTransactionsRequest { TransactionalIds = [TransactionalId] },
            (ResourceType.TransactionalId, TransactionalId, AclOperation.Describe), ErrorCode.TransactionalIdAuthorizationFailed, r => (ErrorCode)((DescribeTransactionsResponse)r).TransactionStates[0].ErrorCode),
        new Row(ApiKey.DescribeProducers, 0, () => new DescribeProducersRequest { Topics = [new() { Name = Topic, PartitionIndexes = [0] }] },
            (ResourceType.Topic, Topic, AclOperation.Read), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((DescribeProducersResponse)r).Topics[0].Partitions[0].ErrorCode),
        new Row(ApiKey.DescribeLogDirs, 4, () => new DescribeLogDirsRequest { Topics = null },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.Describe), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((DescribeLogDirsResponse)r).ErrorCode),
        new Row(ApiKey.DescribeTopicPartitions, 0, () => new DescribeTopicPartitionsRequest { Topics = [new() { Name = Topic }], ResponsePartitionLimit = 100 },
            (ResourceType.Topic, Topic, AclOperation.Describe), ErrorCode.TopicAuthorizationFailed, r => (ErrorCode)((DescribeTopicPartitionsResponse)r).Topics[0].ErrorCode),
        new Row(ApiKey.DescribeAcls, 3, AclApiTests.All,
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.Describe), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((DescribeAclsResponse)r).ErrorCode),
        new Row(ApiKey.CreateAcls, 3, () => new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "x", AclOperation.Read, "User:bob")] },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.Alter), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((CreateAclsResponse)r).Results[0].ErrorCode),
        new Row(ApiKey.DescribeClientQuotas, 1, () => new DescribeClientQuotasRequest { Components = [], Strict = false },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.DescribeConfigs), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((DescribeClientQuotasResponse)r).ErrorCode),
        new Row(ApiKey.AlterClientQuotas, 1, () => new AlterClientQuotasRequest { Entries = [new() { Entity = [new() { EntityType = "user", EntityName = "bob" }], Ops = [new() { Key = "producer_byte_rate", Value = 1000, Remove = false }] }] },
            (ResourceType.Cluster, AuthorizedOperations.ClusterName, AclOperation.AlterConfigs), ErrorCode.ClusterAuthorizationFailed, r => (ErrorCode)((AlterClientQuotasResponse)r).Entries[0].ErrorCode),
    }.ToDictionary(r => r.ToString());

    private static AddPartitionsToTxnRequest AddPartitions() => new()
    {
        V3AndBelowTransactionalId = TransactionalId,
        V3AndBelowProducerId = 1,
        V3AndBelowProducerEpoch = 0,
        V3AndBelowTopics = [new() { Name = Topic, Partitions = [0] }],
    };

    private static WriteTxnMarkersRequest WriteMarkers() => new()
    {
        Markers = [new() { ProducerId = 1, ProducerEpoch = 0, TransactionResult = false, CoordinatorEpoch = 0, Topics = [new() { Name = Topic, PartitionIndexes = [0] }] }],
    };

    public static TheoryData<string> RowNames() => [.. Rows.Keys];

    [Theory]
    [MemberData(nameof(RowNames))]
    public async Task Refused_without_the_acl_and_let_through_with_it(string name)
    {
        var row = Rows[name];
        await using var broker = BrokerHarness.Start(o => o.Properties = AclProperties());
        var admin = As(Admin);
        var made = await broker.SendAsync<CreateTopicsResponse>(admin, ApiKey.CreateTopics, 7, new CreateTopicsRequest { TimeoutMs = 1000, Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 }] });
        Assert.Equal(ErrorCode.None, (ErrorCode)made.Topics[0].ErrorCode);

        if (row.Given is { } given)
        {
            await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = [Creation(given.Type, given.Name, given.Op, Alice)] });
        }

        if (row.Api is ApiKey.TxnOffsetCommit)
        {
            var others = TxnOffsetCommitAcls.Where(a => a != row.Needs).Select(a => Creation(a.Type, a.Name, a.Op, Alice)).ToList();
            await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = others });
        }

        var alice = As(Alice);
        var before = row.ErrorOf(await Send(broker, alice, row));
        Assert.Equal(row.Refusal, before);

        var granted = await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = [Creation(row.Needs.Type, row.Needs.Name, row.Needs.Op, Alice)] });
        Assert.Equal(ErrorCode.None, (ErrorCode)granted.Results[0].ErrorCode);
        if (row.Needs.Type == ResourceType.Group && row.Api is ApiKey.OffsetCommit)
        {
            // OffsetCommit needs Read on the topic too: without it, the partition is refused alone.
            Assert.Equal(ErrorCode.TopicAuthorizationFailed, row.ErrorOf(await Send(broker, alice, row)));
            await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, Topic, AclOperation.Read, Alice)] });
        }

        var after = row.ErrorOf(await Send(broker, alice, row));
        Assert.NotEqual(row.Refusal, after);
        Assert.NotEqual(ErrorCode.TopicAuthorizationFailed, after);
        Assert.NotEqual(ErrorCode.GroupAuthorizationFailed, after);
        Assert.NotEqual(ErrorCode.ClusterAuthorizationFailed, after);
    }

    [Fact]
    public async Task A_deny_wins_over_an_allow_and_other_hosts_are_not_matched()
    {
        await using var broker = BrokerHarness.Start(o => o.Properties = AclProperties());
        var admin = As(Admin);
        await broker.SendAsync<CreateTopicsResponse>(admin, ApiKey.CreateTopics, 7, new CreateTopicsRequest { TimeoutMs = 1000, Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 1 }] });
        await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest
        {
            Creations =
            [
                Creation(ResourceType.Topic, Topic, AclOperation.All, "User:*"),
                Creation(ResourceType.Topic, Topic, AclOperation.Describe, Alice, permission: AclPermissionType.Deny, host: "10.0.0.9"),
            ],
        });
        var metadata = new MetadataRequest { Topics = [new() { Name = Topic }], AllowAutoTopicCreation = false };
        Assert.Equal(ErrorCode.None, (ErrorCode)(await broker.SendAsync<MetadataResponse>(As(Alice, "10.0.0.1"), ApiKey.Metadata, 12, metadata)).Topics[0].ErrorCode);
        Assert.Equal(ErrorCode.TopicAuthorizationFailed, (ErrorCode)(await broker.SendAsync<MetadataResponse>(As(Alice, "10.0.0.9"), ApiKey.Metadata, 12, metadata)).Topics[0].ErrorCode);
        var all = await broker.SendAsync<MetadataResponse>(As(Alice, "10.0.0.9"), ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.DoesNotContain(all.Topics, t => t.Name == Topic);
    }

    [Fact]
    public async Task Internal_topics_stay_closed_to_clients_whatever_the_acls()
    {
        await using var broker = BrokerHarness.Start(o => o.Properties = AclProperties());
        var admin = As(Admin);
        await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "__consumer_offsets", AclOperation.All, Alice)] });
        var fetch = new FetchRequest { ReplicaId = -1, MaxWaitMs = 0, MinBytes = 0, MaxBytes = 1 << 20, Topics = [new() { Topic = "__consumer_offsets", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }] };
        var response = await broker.SendAsync<FetchResponse>(As(Alice), ApiKey.Fetch, 12, fetch);
        Assert.Equal(ErrorCode.TopicAuthorizationFailed, (ErrorCode)response.Responses[0].Partitions[0].ErrorCode);
    }

    private static TxnOffsetCommitRequest TxnOffsetCommit() => new()
    {
        TransactionalId = TransactionalId,
        GroupId = Group,
        ProducerId = 1000,
        ProducerEpoch = 0,
        Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, CommittedOffset = 0 }] }],
    };

    private static ErrorCode TxnOffsetCommitError(IKafkaMessage r) => (ErrorCode)((TxnOffsetCommitResponse)r).Topics[0].Partitions[0].ErrorCode;

    private static async Task<IKafkaMessage> Send(BrokerHarness broker, ConnectionSession session, Row row)
    {
        var spec = ApiSpecs.Find((short)row.Api)!;
        var correlation = Random.Shared.Next(1, int.MaxValue);
        var raw = await BrokerHarness.SendRawAsync(broker.Broker, BrokerHarness.Frame(row.Api, row.Version, correlation, row.Request()), session);
        Assert.False(raw.Closed, raw.CloseReason);
        var response = ResponseFor(row.Api);
        BrokerHarness.DecodeInto(response, raw.Frame!, correlation, spec.ResponseHeaderVersion(row.Version), row.Version);
        return response;
    }

    private static IKafkaMessage ResponseFor(ApiKey api) => api switch
    {
        ApiKey.Metadata => new MetadataResponse(),
        ApiKey.Produce => new ProduceResponse(),
        ApiKey.Fetch => new FetchResponse(),
        ApiKey.ListOffsets => new ListOffsetsResponse(),
        ApiKey.OffsetForLeaderEpoch => new OffsetForLeaderEpochResponse(),
        ApiKey.CreateTopics => new CreateTopicsResponse(),
        ApiKey.DeleteTopics => new DeleteTopicsResponse(),
        ApiKey.CreatePartitions => new CreatePartitionsResponse(),
        ApiKey.DeleteRecords => new DeleteRecordsResponse(),
        ApiKey.DescribeConfigs => new DescribeConfigsResponse(),
        ApiKey.AlterConfigs => new AlterConfigsResponse(),
        ApiKey.IncrementalAlterConfigs => new IncrementalAlterConfigsResponse(),
        ApiKey.FindCoordinator => new FindCoordinatorResponse(),
        ApiKey.JoinGroup => new JoinGroupResponse(),
        ApiKey.Heartbeat => new HeartbeatResponse(),
        ApiKey.SyncGroup => new SyncGroupResponse(),
        ApiKey.LeaveGroup => new LeaveGroupResponse(),
        ApiKey.OffsetCommit => new OffsetCommitResponse(),
        ApiKey.OffsetFetch => new OffsetFetchResponse(),
        ApiKey.DescribeGroups => new DescribeGroupsResponse(),
        ApiKey.DeleteGroups => new DeleteGroupsResponse(),
        ApiKey.OffsetDelete => new OffsetDeleteResponse(),
        ApiKey.TxnOffsetCommit => new TxnOffsetCommitResponse(),
        ApiKey.InitProducerId => new InitProducerIdResponse(),
        ApiKey.DescribeProducers => new DescribeProducersResponse(),
        ApiKey.AddPartitionsToTxn => new AddPartitionsToTxnResponse(),
        ApiKey.AddOffsetsToTxn => new AddOffsetsToTxnResponse(),
        ApiKey.EndTxn => new EndTxnResponse(),
        ApiKey.WriteTxnMarkers => new WriteTxnMarkersResponse(),
        ApiKey.DescribeTransactions => new DescribeTransactionsResponse(),
        ApiKey.DescribeLogDirs => new DescribeLogDirsResponse(),
        ApiKey.DescribeTopicPartitions => new DescribeTopicPartitionsResponse(),
        ApiKey.DescribeAcls => new DescribeAclsResponse(),
        ApiKey.CreateAcls => new CreateAclsResponse(),
        ApiKey.DescribeClientQuotas => new DescribeClientQuotasResponse(),
        ApiKey.AlterClientQuotas => new AlterClientQuotasResponse(),
        _ => throw new ArgumentOutOfRangeException(nameof(api)),
    };
}
