using Moldau.Security.Tls;

namespace Moldau.Security.Tests.Tls;

public sealed class SslPrincipalMapperTests
{
    // The rules of Kafka's documentation (ssl.principal.mapping.rules, "Customizing SSL User Name").
    private const string DocumentedRules =
        "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\n" +
        "RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\n" +
        "RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,\n" +
        "DEFAULT";

    [Theory]
    [InlineData("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "serviceuser")]
    [InlineData("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown", "adminuser@admin")]
    [InlineData("O=Org,CN=Some.User,C=US", "some.user")]
    [InlineData("OU=NoName,O=Org", "OU=NoName,O=Org")]
    public void Documented_rules_map_as_in_Kafka(string dn, string expected) =>
        Assert.Equal(expected, SslPrincipalMapper.Parse(DocumentedRules).GetName(dn));

    [Theory]
    [InlineData("CN=Duke,OU=ServiceUsers,O=Org,C=US", "duke")]
    [InlineData("CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US", "duke@sme")]
    [InlineData("cn=duke,ou=sme,dc=mycp,dc=com", "DUKE@SME")]
    [InlineData("cN=duke,OU=JavaSoft,O=Sun Microsystems", "DUKE")]
    [InlineData("OU=JavaSoft,O=Sun Microsystems,C=US", "OU=JavaSoft,O=Sun Microsystems,C=US")]
    public void Rules_apply_in_order_with_case_changes(string dn, string expected)
    {
        var mapper = SslPrincipalMapper.Parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L, RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, " +
            "RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT");
        Assert.Equal(expected, mapper.GetName(dn));
    }

    [Theory]
    [InlineData("DEFAULT")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L")]
    [InlineData("RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L")]
    [InlineData("RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT")]
    [InlineData("  RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/ ,   DEFAULT  ")]
    public void Valid_rules_parse(string rules) => SslPrincipalMapper.Parse(rules);

    [Theory]
    [InlineData("default")]
    [InlineData("DEFAUL")]
    [InlineData("DEFAULT/L")]
    [InlineData("DEFAULT/U")]
    [InlineData("RULE:CN=(.*?),OU=ServiceUsers.*/$1")]
    [InlineData("rule:^CN=(.*?),OU=ServiceUsers.*$/$1/")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L/U")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/L")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/U")]
    [InlineData("RULE:^CN=(.*?),OU=ServiceUsers.*$/LU")]
    public void Invalid_rules_are_refused(string rules) =>
        Assert.Throws<FormatException>(() => SslPrincipalMapper.Parse(rules));

    [Fact]
    public void No_matching_rule_gives_no_name() =>
        Assert.Null(SslPrincipalMapper.Parse("RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/").GetName("CN=Duke,OU=ProdUsers,O=Org,C=US"));

    [Fact]
    public void Escaped_comma_in_a_name_survives()
    {
        var mapper = SslPrincipalMapper.Parse(@"RULE:^CN=((\\, *|\w)+)(,.*|$)/$1/,DEFAULT");
        Assert.Equal(@"Tkac\, Adam", mapper.GetName(@"CN=Tkac\, Adam,OU=ITZ,DC=geodis,DC=cz"));
    }

    [Fact]
    public void Escaped_slash_in_a_pattern_and_replacement()
    {
        var mapper = SslPrincipalMapper.Parse(@"RULE:^CN=(.*?)\/(.*?),O=.*$/$2\/$1/");
        Assert.Equal("b/a", mapper.GetName("CN=a/b,O=x"));
    }

    [Fact]
    public void A_reference_to_a_missing_group_is_literal() =>
        Assert.Equal("alice$2", SslPrincipalMapper.Parse("RULE:^CN=(.*?),.*$/$1$2/").GetName("CN=alice,O=x"));

    [Fact]
    public void Absent_rules_are_DEFAULT() =>
        Assert.Equal("CN=a,O=b", SslPrincipalMapper.Parse(null).GetName("CN=a,O=b"));
}
