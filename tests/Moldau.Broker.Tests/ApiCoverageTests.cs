using System.Collections;
using System.Reflection;
using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>Names the API a test exercises through the dispatcher, for <see cref="ApiCoverageTests"/>.</summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = true)]
internal sealed class CoversAttribute(ApiKey api) : Attribute
{
    public ApiKey Api { get; } = api;
}

/// <summary>A broker with one topic, "probe" (2 partitions, one record in partition 0), shared by the probes.</summary>
public sealed class ProbeBroker : IAsyncLifetime
{
    internal BrokerHarness Harness { get; private set; } = null!;

    internal Uuid ProbeTopicId { get; private set; }

    public async Task InitializeAsync()
    {
        Harness = BrokerHarness.Start();
        foreach (var name in new[] { "probe", "probe-records" })
        {
            var created = await Harness.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
            {
                Topics = [new() { Name = name, NumPartitions = 2, ReplicationFactor = 1 }],
                TimeoutMs = 1000,
            });
            Assert.Equal(0, created.Topics.Single().ErrorCode);
            if (name == "probe")
            {
                ProbeTopicId = created.Topics.Single().TopicId;
            }

            var produced = await Harness.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
            {
                Acks = -1,
                TimeoutMs = 1000,
                TopicData = [new() { Name = name, PartitionData = [new() { Index = 0, Records = ApiCoverageTests.OneRecord() }] }],
            });
            Assert.Equal(0, produced.Responses.Single().PartitionResponses.Single().ErrorCode);
        }
    }

    public async Task DisposeAsync() => await Harness.DisposeAsync();
}

/// <summary>
/// Every API the broker advertises has a probe here and a test of its own (a method marked
/// <see cref="CoversAttribute"/>): an API added to the broker without them fails
/// <see cref="EveryAdvertisedApiHasAProbeAndATest"/>. The probe sends a valid request at every
/// advertised version and checks the response decodes to its last byte with no error code set
/// (beyond the ones a probe names as the expected answer).
/// </summary>
public sealed class ApiCoverageTests(ProbeBroker fixture) : IClassFixture<ProbeBroker>
{
    private const string Assignor = "range";

    /// <summary>What a probe sends at a version, and which error codes are the expected answer there.</summary>
    private sealed record Probe(Func<ProbeBroker, short, Task<IKafkaMessage>> Request, Func<short, ErrorCode[]>? Expected = null);

    private static readonly Dictionary<ApiKey, Probe> Probes = new()
    {
        [ApiKey.Produce] = new(
            (_, v) => Task.FromResult<IKafkaMessage>(new ProduceRequest
            {
                Acks = -1,
                TimeoutMs = 1000,
                TopicData = [new() { Name = "probe", PartitionData = [new() { Index = 1, Records = OneRecord() }] }],
            }),
            v => v < 3 ? [ErrorCode.UnsupportedVersion] : []),
        [ApiKey.Fetch] = new((f, v) => Task.FromResult<IKafkaMessage>(new FetchRequest
        {
            MaxBytes = 1 << 20,
            Topics = [new() { Topic = "probe", TopicId = f.ProbeTopicId, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        })),
        [ApiKey.ListOffsets] = new((_, _) => Task.FromResult<IKafkaMessage>(new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "probe", Partitions = [new() { PartitionIndex = 0, Timestamp = -2, MaxNumOffsets = 1 }] }],
        })),
        [ApiKey.Metadata] = new((_, _) => Task.FromResult<IKafkaMessage>(new MetadataRequest { Topics = [new() { Name = "probe" }] })),
        [ApiKey.ApiVersions] = new((_, _) => Task.FromResult<IKafkaMessage>(new ApiVersionsRequest { ClientSoftwareName = "moldau-tests", ClientSoftwareVersion = "1.0" })),
        [ApiKey.DescribeTopicPartitions] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeTopicPartitionsRequest { Topics = [new() { Name = "probe" }], ResponsePartitionLimit = 10 })),
        [ApiKey.CreateTopics] = new((_, v) => Task.FromResult<IKafkaMessage>(new CreateTopicsRequest
        {
            Topics = [new() { Name = $"created-v{v}", NumPartitions = 1, ReplicationFactor = 1 }],
            TimeoutMs = 1000,
        })),
        [ApiKey.DeleteTopics] = new(async (f, v) =>
        {
            await CreateTopicAsync(f.Harness, $"doomed-v{v}");
            return new DeleteTopicsRequest { TopicNames = [$"doomed-v{v}"], Topics = [new() { Name = $"doomed-v{v}" }], TimeoutMs = 1000 };
        }),
        [ApiKey.CreatePartitions] = new(async (f, v) =>
        {
            await CreateTopicAsync(f.Harness, $"grown-v{v}");
            return new CreatePartitionsRequest { Topics = [new() { Name = $"grown-v{v}", Count = 2 }], TimeoutMs = 1000 };
        }),
        [ApiKey.InitProducerId] = new((_, _) => Task.FromResult<IKafkaMessage>(new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000, ProducerId = -1, ProducerEpoch = -1 })),
        [ApiKey.FindCoordinator] = new((_, _) => Task.FromResult<IKafkaMessage>(new FindCoordinatorRequest { Key = "probe-group", CoordinatorKeys = ["probe-group"] })),
        [ApiKey.JoinGroup] = new(
            (_, v) => Task.FromResult<IKafkaMessage>(JoinRequest($"join-v{v}", string.Empty)),
            v => v >= 4 ? [ErrorCode.MemberIdRequired] : []),
        [ApiKey.SyncGroup] = new(async (f, v) =>
        {
            var (member, generation) = await JoinAloneAsync(f.Harness, $"sync-v{v}");
            return new SyncGroupRequest
            {
                GroupId = $"sync-v{v}",
                GenerationId = generation,
                MemberId = member,
                ProtocolType = "consumer",
                ProtocolName = Assignor,
                Assignments = [new() { MemberId = member, Assignment = [0, 1] }],
            };
        }),
        [ApiKey.Heartbeat] = new(async (f, v) =>
        {
            var (member, generation) = await JoinAloneAsync(f.Harness, $"heartbeat-v{v}");
            return new HeartbeatRequest { GroupId = $"heartbeat-v{v}", GenerationId = generation, MemberId = member };
        }),
        [ApiKey.LeaveGroup] = new(async (f, v) =>
        {
            var (member, _) = await JoinAloneAsync(f.Harness, $"leave-v{v}");
            return new LeaveGroupRequest { GroupId = $"leave-v{v}", MemberId = member, Members = [new() { MemberId = member }] };
        }),
        [ApiKey.OffsetCommit] = new((_, v) => Task.FromResult<IKafkaMessage>(SimpleCommit($"commit-v{v}"))),
        [ApiKey.OffsetFetch] = new((_, _) => Task.FromResult<IKafkaMessage>(new OffsetFetchRequest
        {
            GroupId = "commit-v2",
            Topics = [new() { Name = "probe", PartitionIndexes = [0] }],
            Groups = [new() { GroupId = "commit-v2", Topics = [new() { Name = "probe", PartitionIndexes = [0] }] }],
        })),
        [ApiKey.TxnOffsetCommit] = new((f, v) =>
        {
            // The probe's producer is unknown to the transaction coordinator: no KIP-890 verification.
            f.Harness.Broker.GroupCoordinator.TransactionVerifier = null;
            return Task.FromResult<IKafkaMessage>(new TxnOffsetCommitRequest
            {
                TransactionalId = "probe-tx",
                GroupId = $"txn-commit-v{v}",
                ProducerId = 1000 + v,
                ProducerEpoch = 0,
                Topics = [new() { Name = "probe", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1, CommittedLeaderEpoch = -1, CommittedMetadata = "m" }] }],
            });
        }),
        [ApiKey.ConsumerGroupHeartbeat] = new((_, v) => Task.FromResult<IKafkaMessage>(new ConsumerGroupHeartbeatRequest
        {
            GroupId = $"cg-heartbeat-v{v}",
            MemberId = $"member-v{v}",
            RebalanceTimeoutMs = 30_000,
            SubscribedTopicNames = ["probe"],
            TopicPartitions = [],
        })),
        [ApiKey.ConsumerGroupDescribe] = new(async (f, v) =>
        {
            await f.Harness.SendAsync<ConsumerGroupHeartbeatResponse>(ApiKey.ConsumerGroupHeartbeat, 1, new ConsumerGroupHeartbeatRequest { GroupId = $"cg-describe-v{v}", MemberId = "m", RebalanceTimeoutMs = 30_000, SubscribedTopicNames = ["probe"], TopicPartitions = [] });
            return new ConsumerGroupDescribeRequest { GroupIds = [$"cg-describe-v{v}"] };
        }),
        [ApiKey.ListGroups] = new((_, _) => Task.FromResult<IKafkaMessage>(new ListGroupsRequest())),
        [ApiKey.DescribeGroups] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeGroupsRequest { Groups = ["commit-v2"] })),
        [ApiKey.DeleteGroups] = new(async (f, v) =>
        {
            await f.Harness.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 2, SimpleCommit($"deleted-v{v}"));
            return new DeleteGroupsRequest { GroupsNames = [$"deleted-v{v}"] };
        }),
        [ApiKey.OffsetDelete] = new(async (f, v) =>
        {
            await f.Harness.SendAsync<OffsetCommitResponse>(ApiKey.OffsetCommit, 2, SimpleCommit($"offset-delete-v{v}"));
            return new OffsetDeleteRequest { GroupId = $"offset-delete-v{v}", Topics = [new() { Name = "probe", Partitions = [new() { PartitionIndex = 0 }] }] };
        }),
        [ApiKey.DescribeCluster] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeClusterRequest())),
        [ApiKey.DescribeConfigs] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeConfigsRequest { Resources = [new() { ResourceType = 2, ResourceName = "probe" }] })),
        [ApiKey.AlterConfigs] = new((_, _) => Task.FromResult<IKafkaMessage>(new AlterConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "probe", Configs = [new() { Name = "retention.ms", Value = "86400000" }] }],
        })),
        [ApiKey.IncrementalAlterConfigs] = new((_, _) => Task.FromResult<IKafkaMessage>(new IncrementalAlterConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "probe", Configs = [new() { Name = "retention.ms", ConfigOperation = 0, Value = "86400000" }] }],
        })),
        [ApiKey.OffsetForLeaderEpoch] = new((_, _) => Task.FromResult<IKafkaMessage>(new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics = [new() { Topic = "probe", Partitions = [new() { Partition = 0, CurrentLeaderEpoch = -1, LeaderEpoch = 0 }] }],
        })),
        [ApiKey.DeleteRecords] = new((_, _) => Task.FromResult<IKafkaMessage>(new DeleteRecordsRequest
        {
            Topics = [new() { Name = "probe-records", Partitions = [new() { PartitionIndex = 0, Offset = 0 }] }],
            TimeoutMs = 1000,
        })),
        [ApiKey.DescribeLogDirs] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeLogDirsRequest { Topics = null })),
        [ApiKey.DescribeProducers] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeProducersRequest { Topics = [new() { Name = "probe", PartitionIndexes = [0] }] })),
        [ApiKey.DescribeClientQuotas] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeClientQuotasRequest { Components = [new() { EntityType = "user", MatchType = 2, Match = null }] })),
        [ApiKey.AlterClientQuotas] = new((_, _) => Task.FromResult<IKafkaMessage>(new AlterClientQuotasRequest
        {
            Entries = [new() { Entity = [new() { EntityType = "client-id", EntityName = "probe" }], Ops = [new() { Key = "producer_byte_rate", Value = 1e12 }] }],
        })),
        // The probe broker has no authorizer: the ACL APIs answer SECURITY_DISABLED, as Kafka's.
        [ApiKey.DescribeAcls] = new((_, _) => Task.FromResult<IKafkaMessage>(Acls.AclApiTests.All()), _ => [ErrorCode.SecurityDisabled]),
        [ApiKey.CreateAcls] = new(
            (_, _) => Task.FromResult<IKafkaMessage>(new CreateAclsRequest { Creations = [Acls.AclApiTests.Creation(Authorization.ResourceType.Topic, "probe", Authorization.AclOperation.Read, "User:x")] }),
            _ => [ErrorCode.SecurityDisabled]),
        [ApiKey.DeleteAcls] = new(
            (_, _) => Task.FromResult<IKafkaMessage>(new DeleteAclsRequest { Filters = [new() { ResourceTypeFilter = 1, ResourceNameFilter = null, PatternTypeFilter = 1, PrincipalFilter = null, HostFilter = null, Operation = 1, PermissionType = 1 }] }),
            _ => [ErrorCode.SecurityDisabled]),
        // The probes' listener has no SASL: Kafka answers the SASL APIs there with ILLEGAL_SASL_STATE.
        [ApiKey.SaslHandshake] = new((_, _) => Task.FromResult<IKafkaMessage>(new SaslHandshakeRequest { Mechanism = "PLAIN" }), _ => [ErrorCode.IllegalSaslState]),
        [ApiKey.SaslAuthenticate] = new((_, _) => Task.FromResult<IKafkaMessage>(new SaslAuthenticateRequest { AuthBytes = [0, 97, 0, 98] }), _ => [ErrorCode.IllegalSaslState]),
        [ApiKey.AddPartitionsToTxn] = new(async (f, v) =>
        {
            var (pid, epoch) = await TransactionDispatchTests.InitAsync(f.Harness, $"probe-add-v{v}");
            return v < 4
                ? new AddPartitionsToTxnRequest { V3AndBelowTransactionalId = $"probe-add-v{v}", V3AndBelowProducerId = pid, V3AndBelowProducerEpoch = epoch, V3AndBelowTopics = [new() { Name = "probe", Partitions = [0, 1] }] }
                : new AddPartitionsToTxnRequest { Transactions = [new() { TransactionalId = $"probe-add-v{v}", ProducerId = pid, ProducerEpoch = epoch, Topics = [new() { Name = "probe", Partitions = [0] }] }] };
        }),
        [ApiKey.AddOffsetsToTxn] = new(async (f, v) =>
        {
            var (pid, epoch) = await TransactionDispatchTests.InitAsync(f.Harness, $"probe-offsets-v{v}");
            return new AddOffsetsToTxnRequest { TransactionalId = $"probe-offsets-v{v}", ProducerId = pid, ProducerEpoch = epoch, GroupId = "probe-group" };
        }),
        [ApiKey.EndTxn] = new(async (f, v) =>
        {
            var id = $"probe-end-v{v}";
            var (pid, epoch) = await TransactionDispatchTests.InitAsync(f.Harness, id);
            await TransactionDispatchTests.AddAsync(f.Harness, id, pid, epoch, "probe", 1);
            return new EndTxnRequest { TransactionalId = id, ProducerId = pid, ProducerEpoch = epoch, Committed = v % 2 == 0 };
        }),
        [ApiKey.WriteTxnMarkers] = new((_, v) => Task.FromResult<IKafkaMessage>(new WriteTxnMarkersRequest
        {
            Markers = [new() { ProducerId = 90_000 + v, ProducerEpoch = 0, TransactionResult = false, CoordinatorEpoch = 0, Topics = [new() { Name = "probe", PartitionIndexes = [1] }] }],
        })),
        [ApiKey.DescribeTransactions] = new(async (f, _) =>
        {
            await TransactionDispatchTests.InitAsync(f.Harness, "probe-describe");
            return new DescribeTransactionsRequest { TransactionalIds = ["probe-describe"] };
        }),
        [ApiKey.ListTransactions] = new((_, _) => Task.FromResult<IKafkaMessage>(new ListTransactionsRequest { StateFilters = [], ProducerIdFilters = [], DurationFilter = -1 })),
        [ApiKey.DescribeUserScramCredentials] = new((_, _) => Task.FromResult<IKafkaMessage>(new DescribeUserScramCredentialsRequest { Users = null })),
        [ApiKey.AlterUserScramCredentials] = new((_, v) => Task.FromResult<IKafkaMessage>(new AlterUserScramCredentialsRequest
        {
            Upsertions = [new() { Name = $"probe-v{v}", Mechanism = 1, Iterations = 4096, Salt = [1, 2, 3], SaltedPassword = new byte[32] }],
        })),
    };

    public static TheoryData<ApiKey> ProbedApis() => [.. Probes.Keys.Order()];

    /// <summary>One uncompressed record, a fresh array each time (the broker rewrites a produced batch in place).</summary>
    internal static byte[] OneRecord() => RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("k"), Encoding.UTF8.GetBytes("v"), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);

    private static async Task CreateTopicAsync(BrokerHarness harness, string name)
    {
        var created = await harness.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 4, new CreateTopicsRequest { Topics = [new() { Name = name, NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 1000 });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
    }

    private static JoinGroupRequest JoinRequest(string group, string member) => new()
    {
        GroupId = group,
        SessionTimeoutMs = 30000,
        RebalanceTimeoutMs = 30000,
        MemberId = member,
        ProtocolType = "consumer",
        Protocols = [new() { Name = Assignor, Metadata = [0, 0, 0, 0, 0, 0] }],
    };

    /// <summary>A first join at v3 (no member id round trip): the only member, so the join completes at once.</summary>
    private static async Task<(string Member, int Generation)> JoinAloneAsync(BrokerHarness harness, string group)
    {
        var joined = await harness.SendAsync<JoinGroupResponse>(ApiKey.JoinGroup, 3, JoinRequest(group, string.Empty));
        Assert.Equal(0, joined.ErrorCode);
        return (joined.MemberId, joined.GenerationId);
    }

    private static OffsetCommitRequest SimpleCommit(string group) => new()
    {
        GroupId = group,
        GenerationIdOrMemberEpoch = -1,
        MemberId = string.Empty,
        RetentionTimeMs = -1,
        Topics = [new() { Name = "probe", Partitions = [new() { PartitionIndex = 0, CommittedOffset = 1, CommittedLeaderEpoch = -1, CommittedMetadata = "m" }] }],
    };

    [Fact]
    public async Task EveryAdvertisedApiHasAProbeAndATest()
    {
        var advertised = (await fixture.Harness.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest { ClientSoftwareName = "moldau-tests", ClientSoftwareVersion = "1.0" }))
            .ApiKeys.Select(a => (ApiKey)a.ApiKey).Order().ToList();
        Assert.Equal(advertised, Probes.Keys.Order());
        var tested = typeof(ApiCoverageTests).Assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
            .SelectMany(m => m.GetCustomAttributes<CoversAttribute>())
            .Select(c => c.Api)
            .ToHashSet();
        Assert.Equal([], advertised.Where(a => !tested.Contains(a)));
    }

    [Theory]
    [MemberData(nameof(ProbedApis))]
    public async Task EveryAdvertisedVersionAnswersAWellFormedResponse(ApiKey api)
    {
        var versions = (await fixture.Harness.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0, new ApiVersionsRequest()))
            .ApiKeys.Single(a => a.ApiKey == (short)api);
        var probe = Probes[api];
        var spec = ApiSpecs.Find((short)api)!;
        var responseType = typeof(ApiVersionsResponse).Assembly.GetType($"Moldau.Protocol.Messages.{spec.Name}Response", throwOnError: true)!;
        for (var v = versions.MinVersion; v <= versions.MaxVersion; v++)
        {
            var request = await probe.Request(fixture, v);
            var raw = await fixture.Harness.SendRawAsync(BrokerHarness.Frame(api, v, 1000 + v, request));
            Assert.False(raw.Closed, $"{api} v{v}: {raw.CloseReason}");
            var response = (IKafkaMessage)Activator.CreateInstance(responseType)!;
            BrokerHarness.DecodeInto(response, raw.Frame!, 1000 + v, spec.ResponseHeaderVersion(v), v);
            var expected = probe.Expected?.Invoke(v) ?? [];
            var errors = ErrorCodes(response).Where(e => e != 0).Select(e => (ErrorCode)e).Distinct().ToList();
            Assert.True(errors.All(expected.Contains), $"{api} v{v} answered {string.Join(", ", errors)}");
            Assert.True(expected.All(errors.Contains), $"{api} v{v} did not answer {string.Join(", ", expected)}");
        }
    }

    /// <summary>Every error_code field anywhere in a response.</summary>
    private static IEnumerable<short> ErrorCodes(object message)
    {
        foreach (var property in message.GetType().GetProperties())
        {
            var value = property.GetValue(message);
            if (property.Name == "ErrorCode" && value is short code)
            {
                yield return code;
            }
            else if (value is IList list and not byte[])
            {
                foreach (var item in list)
                {
                    if (item is not null && item.GetType().Namespace == typeof(ApiVersionsResponse).Namespace)
                    {
                        foreach (var nested in ErrorCodes(item))
                        {
                            yield return nested;
                        }
                    }
                }
            }
            else if (value is not null && value.GetType().IsClass && value.GetType().Namespace == typeof(ApiVersionsResponse).Namespace)
            {
                foreach (var nested in ErrorCodes(value))
                {
                    yield return nested;
                }
            }
        }
    }
}
