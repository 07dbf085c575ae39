using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// ACLs against a Moldau process with Kafka's StandardAuthorizer configured: made, described and
/// deleted with Confluent.Kafka's AdminClient, enforced on kcat, and kept across a clean restart
/// and a kill -9. On a PLAINTEXT listener everyone is User:ANONYMOUS; the broker starts with
/// allow.everyone.if.no.acl.found=true so that principal can create the first ACLs, as a Kafka
/// operator bootstraps a cluster without super users.
/// </summary>
public sealed class AclTests
{
    private const string Anonymous = "User:ANONYMOUS";

    private static string Kcat() =>
        ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed; scripts/test.sh installs it (apt-get install kcat)");

    private static Dictionary<string, string> Secured() => new()
    {
        ["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        ["allow.everyone.if.no.acl.found"] = "true",
    };

    private static AclBinding Allow(ResourceType type, string name, AclOperation op, string principal) => new()
    {
        Pattern = new ResourcePattern { Type = type, Name = name, ResourcePatternType = ResourcePatternType.Literal },
        Entry = new AccessControlEntry { Principal = principal, Host = "*", Operation = op, PermissionType = AclPermissionType.Allow },
    };

    private static AclBindingFilter Everything() => new()
    {
        PatternFilter = new ResourcePatternFilter { Type = ResourceType.Any, ResourcePatternType = ResourcePatternType.Any },
        EntryFilter = new AccessControlEntryFilter { Operation = AclOperation.Any, PermissionType = AclPermissionType.Any },
    };

    [Fact]
    public async Task AclsAreManagedByTheAdminClientEnforcedOnKcatAndKeptAcrossRestartsAndAKill()
    {
        Librdkafka.EnsureLoaded();
        await using var broker = await BrokerProcess.StartAsync(properties: Secured());
        var secret = "secret-" + Guid.NewGuid().ToString("N")[..8];
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = secret, NumPartitions = 1, ReplicationFactor = 1 }]);

            // Someone else may read the topic, so it has ACLs and ANONYMOUS is no longer let in by default.
            await admin.CreateAclsAsync([Allow(ResourceType.Topic, secret, AclOperation.Read, "User:bob")]);
            var described = await admin.DescribeAclsAsync(Everything());
            var only = Assert.Single(described.AclBindings);
            Assert.Equal(("User:bob", secret, AclOperation.Read), (only.Entry.Principal, only.Pattern.Name, only.Entry.Operation));
        }

        // kcat as ANONYMOUS: the produce is refused, and the topic is not listed.
        var refused = await ExternalTool.RunAsync(Kcat(), ["-P", "-b", broker.BootstrapServers, "-t", secret, "-X", "message.timeout.ms=5000"], "hidden\n");
        Assert.Contains("authoriz", refused.Stderr, StringComparison.OrdinalIgnoreCase);
        var listed = await ExternalTool.RunAsync(Kcat(), ["-L", "-b", broker.BootstrapServers]);
        Assert.Equal(0, listed.ExitCode);
        Assert.DoesNotContain(secret, listed.Stdout);

        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            await admin.CreateAclsAsync([Allow(ResourceType.Topic, secret, AclOperation.Write, Anonymous), Allow(ResourceType.Topic, secret, AclOperation.Read, Anonymous)]);
        }

        var produced = await ExternalTool.RunAsync(Kcat(), ["-P", "-b", broker.BootstrapServers, "-t", secret], "visible\n");
        Assert.Equal(0, produced.ExitCode);
        var consumed = await ExternalTool.RunAsync(Kcat(), ["-C", "-b", broker.BootstrapServers, "-t", secret, "-o", "beginning", "-e", "-q"]);
        Assert.Equal("visible", consumed.Stdout.Trim());

        // A clean restart, then a kill -9: the ACLs come back from the metadata log each time.
        await broker.StopAsync(TimeSpan.FromSeconds(10));
        await broker.RestartAsync();
        await AssertAclCountAsync(broker, 3);
        await broker.KillAsync();
        await broker.RestartAsync();
        await AssertAclCountAsync(broker, 3);

        // Deleting ANONYMOUS's Write closes the topic to its produce again.
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build())
        {
            var deleted = await admin.DeleteAclsAsync([new AclBindingFilter
            {
                PatternFilter = new ResourcePatternFilter { Type = ResourceType.Topic, Name = secret, ResourcePatternType = ResourcePatternType.Literal },
                EntryFilter = new AccessControlEntryFilter { Principal = Anonymous, Operation = AclOperation.Write, PermissionType = AclPermissionType.Allow },
            }]);
            Assert.Single(deleted.Single().AclBindings);
        }

        var refusedAgain = await ExternalTool.RunAsync(Kcat(), ["-P", "-b", broker.BootstrapServers, "-t", secret, "-X", "message.timeout.ms=5000"], "again\n");
        Assert.Contains("authoriz", refusedAgain.Stderr, StringComparison.OrdinalIgnoreCase);
    }

    private static async Task AssertAclCountAsync(BrokerProcess broker, int expected)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
        var described = await admin.DescribeAclsAsync(Everything());
        Assert.Equal(expected, described.AclBindings.Count);
    }
}
