using System.Text;
using Moldau.Security.Sasl;

namespace Moldau.Security.Tests;

public sealed class PlainSaslServerTests
{
    private static readonly PlainSaslServerFactory Factory = new(new Dictionary<string, string> { ["alice"] = "alice-secret", ["admin"] = "admin-secret" });

    private static SaslStep Login(string token) => Factory.Create().Step(Encoding.UTF8.GetBytes(token));

    [Fact]
    public void Right_password_succeeds_with_or_without_authzid()
    {
        Assert.Equal("User:alice", Login("\0alice\0alice-secret").Principal);
        Assert.Equal(SaslOutcome.Succeeded, Login("alice\0alice\0alice-secret").Outcome);
    }

    [Theory]
    [InlineData("\0alice\0wrong", "wrong password")]
    [InlineData("\0alice\0alice-secretX", "wrong password")]
    [InlineData("\0mallory\0alice-secret", "unknown user")]
    [InlineData("admin\0alice\0alice-secret", "authorization id")]
    [InlineData("alice-secret", "authzid NUL user NUL password")]
    [InlineData("\0\0x", "empty user")]
    public void Failures_say_nothing_to_the_client_and_why_to_the_log(string token, string reason)
    {
        var step = Login(token);
        Assert.Equal(SaslOutcome.Failed, step.Outcome);
        Assert.Equal("Authentication failed: Invalid credentials", step.ClientMessage);
        Assert.Contains(reason, step.LogReason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_message_fails()
    {
        var server = Factory.Create();
        Assert.Equal(SaslOutcome.Succeeded, server.Step("\0alice\0alice-secret"u8).Outcome);
        Assert.Equal(SaslOutcome.Failed, server.Step("\0alice\0alice-secret"u8).Outcome);
    }
}

public sealed class JaasConfigTests
{
    [Fact]
    public void Kafka_broker_example_gives_its_users()
    {
        var modules = JaasConfig.Parse("""
            org.apache.kafka.common.security.plain.PlainLoginModule required
                username="admin"
                password="admin-secret"
                user_admin="admin-secret"
                user_alice="alice-secret";
            """);
        var module = Assert.Single(modules);
        Assert.Equal("required", module.Flag);
        Assert.Equal("admin", module.Options["username"]);
        var users = JaasConfig.PlainUsers(modules);
        Assert.Equal(2, users.Count);
        Assert.Equal("alice-secret", users["alice"]);
    }

    [Fact]
    public void Quotes_escapes_bare_words_comments_and_several_modules()
    {
        var modules = JaasConfig.Parse("""
            // a comment
            org.apache.kafka.common.security.scram.ScramLoginModule required;
            org.apache.kafka.common.security.plain.PlainLoginModule sufficient /* inline */ user_bob=bare user_eve="a \"quoted\" ;= value";
            """);
        Assert.Equal(2, modules.Count);
        var users = JaasConfig.PlainUsers(modules);
        Assert.Equal("bare", users["bob"]);
        Assert.Equal("a \"quoted\" ;= value", users["eve"]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("org.Foo required user_a=\"x\"")]
    [InlineData("org.Foo mandatory;")]
    [InlineData("org.Foo required user_a;")]
    [InlineData("org.Foo required user_a=\"x;")]
    [InlineData("\"org.Foo\" required;")]
    public void Malformed_configurations_are_refused(string text) =>
        Assert.Throws<FormatException>(() => JaasConfig.Parse(text));
}
