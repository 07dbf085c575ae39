using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;

namespace Moldau.Broker.Tests.Acls;

/// <summary>The rules of Kafka's StandardAuthorizer, checked on an <see cref="AclTable"/> directly.</summary>
public sealed class AclAuthorizerTests
{
    private const string Alice = "User:alice";
    private const string Bob = "User:bob";
    private const string Host = "10.0.0.1";

    internal static AclBinding Acl(ResourceType type, string name, AclOperation op, string principal = Alice, AclPermissionType permission = AclPermissionType.Allow, PatternType pattern = PatternType.Literal, string host = "*") =>
        new(Uuid.NewRandom(), type, name, pattern, principal, host, op, permission);

    private static AclAuthorizer Authorizer(bool allowIfNoAcl = false, string[]? superUsers = null, params AclBinding[] acls)
    {
        var table = AclTable.Empty.With(acls, []);
        return new AclAuthorizer(() => table, superUsers ?? [], allowIfNoAcl);
    }

    [Fact]
    public void Literal_name_grants_only_that_resource_and_only_to_that_principal()
    {
        var a = Authorizer(acls: Acl(ResourceType.Topic, "orders", AclOperation.Read));
        Assert.True(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "orders"));
        Assert.False(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "orders2"));
        Assert.False(a.Authorize(Bob, Host, AclOperation.Read, ResourceType.Topic, "orders"));
        Assert.False(a.Authorize(Alice, Host, AclOperation.Write, ResourceType.Topic, "orders"));
        Assert.False(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Group, "orders"));
    }

    [Fact]
    public void Wildcard_name_prefix_and_wildcard_principal_match()
    {
        var a = Authorizer(acls: [
            Acl(ResourceType.Topic, "*", AclOperation.Write),
            Acl(ResourceType.Topic, "logs-", AclOperation.Read, pattern: PatternType.Prefixed),
            Acl(ResourceType.Group, "g", AclOperation.Read, principal: "User:*")]);
        Assert.True(a.Authorize(Alice, Host, AclOperation.Write, ResourceType.Topic, "anything"));
        Assert.True(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "logs-2026"));
        Assert.True(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "logs-"));
        Assert.False(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "logs"));
        Assert.True(a.Authorize(Bob, Host, AclOperation.Read, ResourceType.Group, "g"));
    }

    [Fact]
    public void Deny_wins_over_allow_and_all_covers_every_operation()
    {
        var a = Authorizer(acls: [
            Acl(ResourceType.Topic, "*", AclOperation.All),
            Acl(ResourceType.Topic, "secret", AclOperation.Read, permission: AclPermissionType.Deny, pattern: PatternType.Prefixed)]);
        Assert.True(a.Authorize(Alice, Host, AclOperation.Alter, ResourceType.Topic, "public"));
        Assert.False(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "secret-plans"));
        Assert.True(a.Authorize(Alice, Host, AclOperation.Write, ResourceType.Topic, "secret-plans"));
        var all = Authorizer(acls: [Acl(ResourceType.Topic, "t", AclOperation.Read), Acl(ResourceType.Topic, "t", AclOperation.All, permission: AclPermissionType.Deny)]);
        Assert.False(all.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "t"));
    }

    [Theory]
    [InlineData(AclOperation.Read, AclOperation.Describe, true)]
    [InlineData(AclOperation.Write, AclOperation.Describe, true)]
    [InlineData(AclOperation.Delete, AclOperation.Describe, true)]
    [InlineData(AclOperation.Alter, AclOperation.Describe, true)]
    [InlineData(AclOperation.Create, AclOperation.Describe, false)]
    [InlineData(AclOperation.AlterConfigs, AclOperation.DescribeConfigs, true)]
    [InlineData(AclOperation.Describe, AclOperation.Read, false)]
    [InlineData(AclOperation.DescribeConfigs, AclOperation.AlterConfigs, false)]
    [InlineData(AclOperation.AlterConfigs, AclOperation.Alter, false)]
    internal void Implied_operations_are_kafkas(AclOperation granted, AclOperation wanted, bool allowed)
    {
        var a = Authorizer(acls: Acl(ResourceType.Topic, "t", granted));
        Assert.Equal(allowed, a.Authorize(Alice, Host, wanted, ResourceType.Topic, "t"));
    }

    [Fact]
    public void A_deny_denies_its_own_operation_only()
    {
        var a = Authorizer(acls: [Acl(ResourceType.Topic, "t", AclOperation.All), Acl(ResourceType.Topic, "t", AclOperation.Read, permission: AclPermissionType.Deny)]);
        Assert.False(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "t"));
        Assert.True(a.Authorize(Alice, Host, AclOperation.Describe, ResourceType.Topic, "t"));
    }

    [Fact]
    public void Host_must_be_the_peer_or_the_wildcard()
    {
        var a = Authorizer(acls: Acl(ResourceType.Topic, "t", AclOperation.Read, host: Host));
        Assert.True(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "t"));
        Assert.False(a.Authorize(Alice, "10.0.0.2", AclOperation.Read, ResourceType.Topic, "t"));
    }

    [Fact]
    public void Super_users_pass_even_a_deny_and_no_acl_means_the_configured_default()
    {
        var deny = Acl(ResourceType.Topic, "t", AclOperation.All, principal: "User:*", permission: AclPermissionType.Deny);
        var a = Authorizer(superUsers: ["User:admin", "User:ops"], acls: deny);
        Assert.True(a.Authorize("User:ops", Host, AclOperation.Read, ResourceType.Topic, "t"));
        Assert.False(a.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "other"));

        // allow.everyone.if.no.acl.found: only where no ACL (for anyone) names the resource.
        var open = Authorizer(allowIfNoAcl: true, acls: Acl(ResourceType.Topic, "t", AclOperation.Read, principal: Bob));
        Assert.True(open.Authorize(Alice, Host, AclOperation.Write, ResourceType.Topic, "other"));
        Assert.False(open.Authorize(Alice, Host, AclOperation.Read, ResourceType.Topic, "t"));
    }

    [Fact]
    public void Any_topic_write_is_kip_679s_rule()
    {
        Assert.False(Authorizer().AuthorizeAny(Alice, Host, AclOperation.Write, ResourceType.Topic));
        Assert.True(Authorizer(acls: Acl(ResourceType.Topic, "t", AclOperation.Write)).AuthorizeAny(Alice, Host, AclOperation.Write, ResourceType.Topic));
        Assert.False(Authorizer(acls: Acl(ResourceType.Topic, "t", AclOperation.Read)).AuthorizeAny(Alice, Host, AclOperation.Write, ResourceType.Topic));
        Assert.False(Authorizer(acls: [
            Acl(ResourceType.Topic, "app-x", AclOperation.Write),
            Acl(ResourceType.Topic, "app-", AclOperation.Write, permission: AclPermissionType.Deny, pattern: PatternType.Prefixed)]).AuthorizeAny(Alice, Host, AclOperation.Write, ResourceType.Topic));
        Assert.False(Authorizer(acls: [
            Acl(ResourceType.Topic, "t", AclOperation.Write),
            Acl(ResourceType.Topic, "*", AclOperation.Write, permission: AclPermissionType.Deny)]).AuthorizeAny(Alice, Host, AclOperation.Write, ResourceType.Topic));
        Assert.True(Authorizer(superUsers: [Alice]).AuthorizeAny(Alice, Host, AclOperation.Write, ResourceType.Topic));
    }

    [Fact]
    public void Filters_match_as_kafkas_acl_binding_filter()
    {
        var literal = Acl(ResourceType.Topic, "orders", AclOperation.Read);
        var wildcard = Acl(ResourceType.Topic, "*", AclOperation.Read);
        var prefixed = Acl(ResourceType.Topic, "ord", AclOperation.Read, pattern: PatternType.Prefixed);
        var group = Acl(ResourceType.Group, "orders", AclOperation.Read);
        var table = AclTable.Empty.With([literal, wildcard, prefixed, group], []);
        AclFilter F(ResourceType t, string? name, PatternType p) => new(t, name, p, null, null, AclOperation.Any, AclPermissionType.Any);
        Assert.Equal(new HashSet<AclBinding> { literal, wildcard, prefixed }, table.Matching(F(ResourceType.Topic, "orders", PatternType.Match)).ToHashSet());
        Assert.Equal([literal], table.Matching(F(ResourceType.Topic, "orders", PatternType.Any)));
        Assert.Equal([prefixed], table.Matching(F(ResourceType.Topic, "ord", PatternType.Prefixed)));
        Assert.Equal(4, table.Matching(F(ResourceType.Any, null, PatternType.Any)).Count());
        Assert.Equal(2, table.Matching(F(ResourceType.Any, "orders", PatternType.Literal)).Count());
        Assert.NotNull(table.FindSame(literal with { Id = Uuid.NewRandom() }));
        Assert.Null(table.FindSame(literal with { Host = "1.2.3.4" }));
    }
}
