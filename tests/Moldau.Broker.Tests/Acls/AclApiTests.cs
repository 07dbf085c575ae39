using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests.Acls;

/// <summary>CreateAcls, DescribeAcls and DeleteAcls through the dispatcher, and ACLs surviving a restart.</summary>
public sealed class AclApiTests
{
    internal const string Admin = "User:admin";

    internal static Dictionary<string, string> AclProperties(string superUsers = Admin) => new()
    {
        ["authorizer.class.name"] = AclAuthorizer.StandardAuthorizerClass,
        ["super.users"] = superUsers,
    };

    internal static ConnectionSession As(string principal, string ip = "10.0.0.1") =>
        new(Random.Shared.NextInt64(), new IPEndPoint(IPAddress.Parse(ip), 50000), "PLAINTEXT") { Principal = principal };

    internal static CreateAclsRequest.AclCreation Creation(ResourceType type, string name, AclOperation op, string principal, PatternType pattern = PatternType.Literal, AclPermissionType permission = AclPermissionType.Allow, string host = "*") => new()
    {
        ResourceType = (sbyte)type,
        ResourceName = name,
        ResourcePatternType = (sbyte)pattern,
        Principal = principal,
        Host = host,
        Operation = (sbyte)op,
        PermissionType = (sbyte)permission,
    };

    internal static DescribeAclsRequest All() => new()
    {
        ResourceTypeFilter = (sbyte)ResourceType.Any,
        ResourceNameFilter = null,
        PatternTypeFilter = (sbyte)PatternType.Any,
        PrincipalFilter = null,
        HostFilter = null,
        Operation = (sbyte)AclOperation.Any,
        PermissionType = (sbyte)AclPermissionType.Any,
    };

    [Fact]
    [Covers(ApiKey.CreateAcls)]
    [Covers(ApiKey.DescribeAcls)]
    [Covers(ApiKey.DeleteAcls)]
    public async Task Create_describe_delete_as_kafka_answers()
    {
        await using var broker = BrokerHarness.Start(o => o.Properties = AclProperties());
        var admin = As(Admin);
        var created = await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest
        {
            Creations =
            [
                Creation(ResourceType.Topic, "orders", AclOperation.Read, "User:alice"),
                Creation(ResourceType.Topic, "logs-", AclOperation.Write, "User:alice", PatternType.Prefixed),
                Creation(ResourceType.Group, "g", AclOperation.Read, "User:*"),
                Creation(ResourceType.Topic, "orders", AclOperation.Read, "User:alice"), // a duplicate: stored once
                Creation(ResourceType.Topic, "x", AclOperation.Read, "User:alice", PatternType.Match),
                Creation(ResourceType.Topic, "x", AclOperation.Read, "User:alice", PatternType.Any),
                Creation(ResourceType.Any, "x", AclOperation.Read, "User:alice"),
                Creation((ResourceType)42, "x", AclOperation.Read, "User:alice"),
                Creation(ResourceType.Topic, "x", AclOperation.Any, "User:alice"),
                Creation(ResourceType.Topic, "x", AclOperation.Read, "User:alice", permission: AclPermissionType.Any),
                Creation(ResourceType.Topic, "", AclOperation.Read, "User:alice"),
                Creation(ResourceType.Cluster, "other-cluster", AclOperation.Alter, "User:alice"),
                Creation(ResourceType.Topic, "x", AclOperation.Read, "alice"),
            ],
        });
        Assert.Equal(
            [ErrorCode.None, ErrorCode.None, ErrorCode.None, ErrorCode.None, .. Enumerable.Repeat(ErrorCode.InvalidRequest, 9)],
            created.Results.Select(r => (ErrorCode)r.ErrorCode));

        var described = await broker.SendAsync<DescribeAclsResponse>(admin, ApiKey.DescribeAcls, 3, All());
        Assert.Equal(ErrorCode.None, (ErrorCode)described.ErrorCode);
        Assert.Equal(3, described.Resources.Sum(r => r.Acls.Count));

        var match = All();
        match.ResourceTypeFilter = (sbyte)ResourceType.Topic;
        match.ResourceNameFilter = "logs-2026";
        match.PatternTypeFilter = (sbyte)PatternType.Match;
        var matched = await broker.SendAsync<DescribeAclsResponse>(admin, ApiKey.DescribeAcls, 2, match);
        var only = Assert.Single(matched.Resources);
        Assert.Equal(("logs-", (sbyte)PatternType.Prefixed), (only.ResourceName, only.PatternType));

        var bad = All();
        bad.PatternTypeFilter = 0;
        Assert.Equal(ErrorCode.InvalidRequest, (ErrorCode)(await broker.SendAsync<DescribeAclsResponse>(admin, ApiKey.DescribeAcls, 3, bad)).ErrorCode);

        // Nobody else may: DESCRIBE (or ALTER) on the cluster is needed.
        var alice = As("User:alice");
        Assert.Equal(ErrorCode.ClusterAuthorizationFailed, (ErrorCode)(await broker.SendAsync<DescribeAclsResponse>(alice, ApiKey.DescribeAcls, 3, All())).ErrorCode);

        var deleted = await broker.SendAsync<DeleteAclsResponse>(admin, ApiKey.DeleteAcls, 3, new DeleteAclsRequest
        {
            Filters =
            [
                new() { ResourceTypeFilter = (sbyte)ResourceType.Topic, ResourceNameFilter = "orders-and-logs-", PatternTypeFilter = (sbyte)PatternType.Match, PrincipalFilter = null, HostFilter = null, Operation = (sbyte)AclOperation.Any, PermissionType = (sbyte)AclPermissionType.Any },
                new() { ResourceTypeFilter = (sbyte)ResourceType.Group, ResourceNameFilter = null, PatternTypeFilter = (sbyte)PatternType.Literal, PrincipalFilter = "User:*", HostFilter = "*", Operation = (sbyte)AclOperation.Read, PermissionType = (sbyte)AclPermissionType.Allow },
                new() { ResourceTypeFilter = 0, ResourceNameFilter = null, PatternTypeFilter = (sbyte)PatternType.Any, PrincipalFilter = null, HostFilter = null, Operation = (sbyte)AclOperation.Any, PermissionType = (sbyte)AclPermissionType.Any },
            ],
        });
        Assert.Equal([ErrorCode.None, ErrorCode.None, ErrorCode.InvalidRequest], deleted.FilterResults.Select(r => (ErrorCode)r.ErrorCode));
        Assert.Empty(deleted.FilterResults[0].MatchingAcls);
        Assert.Equal("g", Assert.Single(deleted.FilterResults[1].MatchingAcls).ResourceName);
        Assert.Equal(2, (await broker.SendAsync<DescribeAclsResponse>(admin, ApiKey.DescribeAcls, 3, All())).Resources.Sum(r => r.Acls.Count));

        var denied = await broker.SendAsync<CreateAclsResponse>(alice, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "t", AclOperation.All, "User:alice")] });
        Assert.Equal(ErrorCode.ClusterAuthorizationFailed, (ErrorCode)Assert.Single(denied.Results).ErrorCode);
    }

    [Fact]
    public async Task Without_an_authorizer_the_acl_apis_answer_security_disabled()
    {
        await using var broker = BrokerHarness.Start();
        Assert.Equal(ErrorCode.SecurityDisabled, (ErrorCode)(await broker.SendAsync<DescribeAclsResponse>(ApiKey.DescribeAcls, 1, All())).ErrorCode);
        var created = await broker.SendAsync<CreateAclsResponse>(ApiKey.CreateAcls, 1, new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "t", AclOperation.All, "User:a")] });
        Assert.Equal(ErrorCode.SecurityDisabled, (ErrorCode)Assert.Single(created.Results).ErrorCode);
    }

    [Fact]
    public async Task Acls_are_replayed_from_the_metadata_log()
    {
        var dir = Path.Combine(Path.GetTempPath(), "moldau-acl-" + Guid.NewGuid().ToString("N")[..10]);
        BrokerOptions Options() => new() { LogDirs = [dir], AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)], Properties = AclProperties(Admin + ";" + ConnectionSession.AnonymousPrincipal) };
        try
        {
            await using (var first = new KafkaBroker(Options(), NullLoggerFactory.Instance, TimeProvider.System))
            {
                first.Start();
                var create = new CreateAclsRequest { Creations = [Creation(ResourceType.Topic, "a", AclOperation.Read, "User:x"), Creation(ResourceType.Topic, "b", AclOperation.Read, "User:x")] };
                Assert.All((await BrokerHarness.SendAsync<CreateAclsResponse>(first, 1, ApiKey.CreateAcls, 3, create)).Results, r => Assert.Equal(0, r.ErrorCode));
                var delete = new DeleteAclsRequest { Filters = [new() { ResourceTypeFilter = (sbyte)ResourceType.Topic, ResourceNameFilter = "b", PatternTypeFilter = (sbyte)PatternType.Literal, PrincipalFilter = null, HostFilter = null, Operation = (sbyte)AclOperation.Any, PermissionType = (sbyte)AclPermissionType.Any }] };
                await BrokerHarness.SendAsync<DeleteAclsResponse>(first, 2, ApiKey.DeleteAcls, 3, delete);
            }

            await using var second = new KafkaBroker(Options(), NullLoggerFactory.Instance, TimeProvider.System);
            second.Start();
            var acl = Assert.Single(second.State.Topics.Image.Acls.ById.Values);
            Assert.Equal(("a", "User:x", AclOperation.Read), (acl.ResourceName, acl.Principal, acl.Operation));
            Assert.True(second.State.Authorizer is AclAuthorizer a && a.Authorize("User:x", "1.2.3.4", AclOperation.Describe, ResourceType.Topic, "a"));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

/// <summary>Produce checks WRITE on each topic, as Kafka's KafkaApis.</summary>
public sealed class ProduceAuthorizationTests
{
    [Fact]
    public async Task Produce_needs_write_on_the_topic()
    {
        await using var broker = BrokerHarness.Start(o => o.Properties = AclApiTests.AclProperties());
        var admin = AclApiTests.As(AclApiTests.Admin);
        await broker.SendAsync<CreateTopicsResponse>(admin, ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = "t", NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 1000 });
        ProduceRequest Request() => new() { Acks = -1, TimeoutMs = 1000, TopicData = [new() { Name = "t", PartitionData = [new() { Index = 0, Records = ApiCoverageTests.OneRecord() }] }] };
        var alice = AclApiTests.As("User:alice");
        var denied = await broker.SendAsync<ProduceResponse>(alice, ApiKey.Produce, 9, Request());
        Assert.Equal(ErrorCode.TopicAuthorizationFailed, (ErrorCode)denied.Responses.Single().PartitionResponses.Single().ErrorCode);
        await broker.SendAsync<CreateAclsResponse>(admin, ApiKey.CreateAcls, 3, new CreateAclsRequest { Creations = [AclApiTests.Creation(ResourceType.Topic, "t", AclOperation.Write, "User:alice")] });
        var allowed = await broker.SendAsync<ProduceResponse>(alice, ApiKey.Produce, 9, Request());
        Assert.Equal(ErrorCode.None, (ErrorCode)allowed.Responses.Single().PartitionResponses.Single().ErrorCode);
    }
}
