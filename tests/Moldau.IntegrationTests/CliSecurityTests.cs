using System.Text.Json.Nodes;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// The CLI's SCRAM users and ACLs against a broker with Kafka's StandardAuthorizer and a
/// SASL_PLAINTEXT listener: a user made with <c>moldau user create</c> logs in through a
/// <c>--config</c> properties file as Kafka clients take it; ACLs made with <c>moldau acl</c> apply.
/// </summary>
public sealed class CliSecurityTests : IAsyncLifetime
{
    private BrokerProcess _broker = null!;
    private int _saslPort;
    private string _dir = null!;

    public async Task InitializeAsync()
    {
        _saslPort = BrokerProcess.FreePort();
        _broker = await BrokerProcess.StartWithListenerAsync(
            new Dictionary<string, string>
            {
                ["sasl.enabled.mechanisms"] = "SCRAM-SHA-256,SCRAM-SHA-512",
                ["authorizer.class.name"] = "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                ["allow.everyone.if.no.acl.found"] = "true",
                ["connection.failed.authentication.delay.ms"] = "10",
            },
            $"SASL_PLAINTEXT://127.0.0.1:{_saslPort}");
        _dir = Directory.CreateTempSubdirectory("moldau-cli-").FullName;
    }

    public async Task DisposeAsync()
    {
        await _broker.DisposeAsync();
        Directory.Delete(_dir, true);
    }

    private Task<ExternalTool.Result> Cli(params string[] args) => CliTests.Moldau([.. args, "--bootstrap", _broker.BootstrapServers]);

    private string ClientConfig(string user, string password, string mechanism)
    {
        var path = Path.Combine(_dir, $"{user}-{Guid.NewGuid():N}.properties");
        File.WriteAllLines(path,
        [
            $"bootstrap.servers=127.0.0.1:{_saslPort}",
            "security.protocol=SASL_PLAINTEXT",
            $"sasl.mechanism={mechanism}",
            $"sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"{user}\" password=\"{password}\";",
        ]);
        return path;
    }

    [Fact]
    public async Task AScramUserMadeByTheCliLogsInAndAclsMadeByItApply()
    {
        var created = await Cli("user", "create", "carol", "--password", "carol-secret", "-m", "SCRAM-SHA-512", "--iterations", "8192");
        Assert.True(created.ExitCode == 0, created.Stderr);
        var users = JsonNode.Parse((await Cli("user", "list", "-o", "json")).Stdout)!.AsArray();
        var carol = Assert.Single(users, u => u!["user"]!.GetValue<string>() == "carol")!;
        Assert.Equal(("SCRAM-SHA-512", 8192), (carol["credentials"]![0]!["mechanism"]!.GetValue<string>(), carol["credentials"]![0]!["iterations"]!.GetValue<int>()));

        // Logging in over SASL_PLAINTEXT with the properties file, as a Kafka client would.
        var good = await CliTests.Moldau(["cluster", "info", "--config", ClientConfig("carol", "carol-secret", "SCRAM-SHA-512"), "-o", "json"]);
        Assert.True(good.ExitCode == 0, good.Stderr);
        var wrong = await CliTests.Moldau(["topic", "list", "--config", ClientConfig("carol", "nope", "SCRAM-SHA-512")]);
        Assert.Equal(4, wrong.ExitCode);

        // An ACL on a topic: carol may read it, the anonymous PLAINTEXT user no longer sees it.
        Assert.Equal(0, (await Cli("topic", "create", "secret", "-p", "1")).ExitCode);
        var acl = await Cli("acl", "create", "--allow-principal", "User:carol", "--operation", "read", "--operation", "describe", "--topic", "secret", "-o", "json");
        Assert.True(acl.ExitCode == 0, acl.Stderr);
        var listed = JsonNode.Parse((await Cli("acl", "list", "--topic", "secret", "-o", "json")).Stdout)!.AsArray();
        Assert.Equal(["describe", "read"], listed.Select(a => a!["operation"]!.GetValue<string>()).Order());
        Assert.All(listed, a => Assert.Equal(("User:carol", "allow", "topic"), (a!["principal"]!.GetValue<string>(), a["permission"]!.GetValue<string>(), a["resourceType"]!.GetValue<string>())));

        Assert.Equal(5, (await Cli("topic", "describe", "secret")).ExitCode);
        var asCarol = await CliTests.Moldau(["consume", "secret", "-e", "--config", ClientConfig("carol", "carol-secret", "SCRAM-SHA-512")]);
        Assert.True(asCarol.ExitCode == 0, asCarol.Stderr);

        var deleted = JsonNode.Parse((await Cli("acl", "delete", "--topic", "secret", "--principal", "User:carol", "-o", "json")).Stdout)!.AsArray();
        Assert.Equal(2, deleted.Count);
        Assert.Empty(JsonNode.Parse((await Cli("acl", "list", "-o", "json")).Stdout)!.AsArray());
        Assert.Equal(0, (await Cli("topic", "describe", "secret")).ExitCode);

        // Deleting the user's credentials ends its logins.
        Assert.Equal(0, (await Cli("user", "delete", "carol")).ExitCode);
        Assert.Equal(4, (await CliTests.Moldau(["topic", "list", "--config", ClientConfig("carol", "carol-secret", "SCRAM-SHA-512")])).ExitCode);
        Assert.Equal(6, (await Cli("user", "delete", "carol")).ExitCode);
    }
}
