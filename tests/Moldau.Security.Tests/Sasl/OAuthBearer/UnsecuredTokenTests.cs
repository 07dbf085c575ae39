using System.Text;
using Moldau.Security.Sasl;
using Moldau.Security.Sasl.OAuthBearer;

namespace Moldau.Security.Tests.Sasl.OAuthBearer;

public sealed class UnsecuredTokenTests
{
    private const string Module = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required";

    private static OAuthBearerServerFactory Factory(TimeProvider time, string? jaas = null) =>
        new(key => key == "sasl.jaas.config" ? jaas : null, time);

    [Fact]
    public void Accepts_librdkafkas_unsecured_token_as_its_principal_until_exp()
    {
        var clock = Tokens.Clock();
        using var factory = Factory(clock);
        Assert.False(factory.UsesJwks);

        var token = Tokens.LibrdkafkaUnsecured("alice", Tokens.Now.AddMilliseconds(-250));
        var server = (OAuthBearerServer)factory.Create();
        var step = server.Step(Tokens.FirstMessage(token, "traceId=7\u0001"));

        Assert.Equal(SaslOutcome.Succeeded, step.Outcome);
        Assert.Empty(step.Challenge);
        Assert.Equal("User:alice", step.Principal);
        Assert.Equal(Tokens.Now.AddMilliseconds(-250).AddHours(1), step.CredentialExpiry);
        Assert.Equal("alice", server.Token!.PrincipalName);
        Assert.Equal("7", server.Extensions["traceId"]);
    }

    /// <summary>
    /// The Java client's unsecured token (OAuthBearerUnsecuredLoginCallbackHandler with
    /// <c>unsecuredLoginStringClaim_sub="alice"</c>): claims written by hand as
    /// <c>{"exp":&lt;double&gt;,"iat":&lt;double&gt;,"sub":"alice"}</c>, the doubles as Java's
    /// Double.toString prints epoch seconds, in E notation with milliseconds as the fraction.
    /// </summary>
    [Fact]
    public void Accepts_the_java_clients_unsecured_token_with_e_notation_times()
    {
        var clock = Tokens.Clock();
        using var factory = Factory(clock);
        var iat = Tokens.Now.AddMilliseconds(-250);
        var exp = iat.AddHours(1);
        static string JavaDouble(DateTimeOffset t) =>
            (t.ToUnixTimeMilliseconds() / 1000.0).ToString("0.0##############E0", System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("1.79655839975E9", JavaDouble(iat));
        var claims = $"{{\"exp\":{JavaDouble(exp)},\"iat\":{JavaDouble(iat)},\"sub\":\"alice\"}}";
        var token = Tokens.B64("{\"alg\":\"none\"}"u8.ToArray()) + "." + Tokens.B64(Encoding.UTF8.GetBytes(claims)) + ".";

        // OAuthBearerClientInitialResponse.toBytes() without extensions: n,,^Aauth=Bearer <token>^A^A
        var server = factory.Create();
        var step = server.Step(Tokens.FirstMessage(token));
        Assert.Equal(SaslOutcome.Succeeded, step.Outcome);
        Assert.Equal("User:alice", step.Principal);
        Assert.Equal(exp, step.CredentialExpiry);
    }

    [Fact]
    public void An_expired_token_gets_the_rfc7628_error_then_fails_on_the_clients_0x01()
    {
        var clock = Tokens.Clock();
        using var factory = Factory(clock);
        var token = Tokens.LibrdkafkaUnsecured("alice", Tokens.Now, lifeSeconds: 60);
        clock.Advance(TimeSpan.FromSeconds(60));

        var server = factory.Create();
        var first = server.Step(Tokens.FirstMessage(token));
        Assert.Equal(SaslOutcome.Continue, first.Outcome);
        Assert.Equal("{\"status\":\"invalid_token\"}", Encoding.UTF8.GetString(first.Challenge));

        var final = server.Step([0x01]);
        Assert.Equal(SaslOutcome.Failed, final.Outcome);
        Assert.Equal("{\"status\":\"invalid_token\"}", final.ClientMessage);
        Assert.Contains("expired", final.LogReason);
        Assert.Null(final.Principal);
    }

    [Fact]
    public void The_token_is_valid_until_one_millisecond_before_exp()
    {
        var clock = Tokens.Clock();
        using var factory = Factory(clock);
        var token = Tokens.Unsecured(Tokens.Claims());
        clock.Advance(TimeSpan.FromHours(1) - TimeSpan.FromMilliseconds(1));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, token).First.Outcome);
        clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(SaslOutcome.Failed, Tokens.Exchange(factory, token).Final!.Value.Outcome);
    }

    [Fact]
    public void The_allowable_clock_skew_stretches_exp_and_iat()
    {
        var clock = Tokens.Clock();
        using var strict = Factory(clock);
        using var lenient = Factory(clock, Module + " unsecuredValidatorAllowableClockSkewMs=\"5000\";");
        var fromTheFuture = Tokens.Unsecured(Tokens.Claims(extra: new() { ["iat"] = Tokens.Seconds(Tokens.Now.AddSeconds(3)) }));
        var justExpired = Tokens.Unsecured(Tokens.Claims(extra: new() { ["exp"] = Tokens.Seconds(Tokens.Now.AddSeconds(-3)), ["iat"] = Tokens.Seconds(Tokens.Now.AddMinutes(-5)) }));

        var (first, final) = Tokens.Exchange(strict, fromTheFuture);
        Assert.Equal(SaslOutcome.Continue, first.Outcome);
        Assert.Contains("Issued At", final!.Value.LogReason);
        Assert.Equal(SaslOutcome.Continue, Tokens.Exchange(strict, justExpired).First.Outcome);

        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(lenient, fromTheFuture).First.Outcome);
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(lenient, justExpired).First.Outcome);
    }

    [Theory]
    [InlineData("exp", null, "exp")]
    [InlineData("exp", "soon", "exp")]
    [InlineData("iat", "now", "iat")]
    [InlineData("sub", null, "principal")]
    [InlineData("sub", " ", "principal")]
    [InlineData("sub", 42, "principal")]
    public void Refuses_tokens_with_missing_or_mistyped_claims(string claim, object? value, string reason)
    {
        using var factory = Factory(Tokens.Clock());
        var claims = Tokens.Claims();
        if (value is null)
        {
            claims.Remove(claim);
        }
        else
        {
            claims[claim] = value;
        }

        var (first, final) = Tokens.Exchange(factory, Tokens.Unsecured(claims));
        Assert.Equal(SaslOutcome.Continue, first.Outcome);
        Assert.Equal(SaslOutcome.Failed, final!.Value.Outcome);
        Assert.Contains(reason, final.Value.LogReason);
    }

    [Fact]
    public void Refuses_exp_not_after_iat()
    {
        using var factory = Factory(Tokens.Clock());
        var token = Tokens.Unsecured(Tokens.Claims(extra: new() { ["iat"] = Tokens.Seconds(Tokens.Now.AddSeconds(-10)), ["exp"] = Tokens.Seconds(Tokens.Now.AddSeconds(-10)) }));
        var jaas = Module + " unsecuredValidatorAllowableClockSkewMs=60000;";
        using var lenient = Factory(Tokens.Clock(), jaas);
        Assert.Contains("not after iat", Tokens.Exchange(lenient, token).Final!.Value.LogReason);
    }

    [Fact]
    public void Refuses_signed_or_malformed_tokens_when_no_jwks_is_configured()
    {
        using var factory = Factory(Tokens.Clock());
        using var key = TestKey.Create("RS256", "k1");
        Assert.Contains("alg \"none\"", Tokens.Exchange(factory, key.Sign(Tokens.Claims())).Final!.Value.LogReason);

        var withSignature = Tokens.Unsecured(Tokens.Claims()) + "c2ln";
        Assert.Contains("signature", Tokens.Exchange(factory, withSignature).Final!.Value.LogReason);

        Assert.Contains("'..'", Tokens.Exchange(factory, "eyJhbGciOiJub25lIn0..").Final!.Value.LogReason);
        Assert.Contains("parts", Tokens.Exchange(factory, "abc").Final!.Value.LogReason);
        Assert.Contains("JSON", Tokens.Exchange(factory, "eyJhbGciOiJub25lIn0.bm90IGpzb24.").Final!.Value.LogReason);
    }

    [Fact]
    public void Refuses_duplicate_claims()
    {
        using var factory = Factory(Tokens.Clock());
        var claims = $"{{\"sub\":\"alice\",\"exp\":{Tokens.Seconds(Tokens.Now.AddHours(1))},\"sub\":\"admin\"}}";
        var token = "eyJhbGciOiJub25lIn0." + Tokens.B64(Encoding.UTF8.GetBytes(claims)) + ".";
        Assert.Equal(SaslOutcome.Continue, Tokens.Exchange(factory, token).First.Outcome);
    }

    [Fact]
    public void Reads_the_principal_and_scope_claims_named_in_the_jaas_options()
    {
        var jaas = Module + " unsecuredValidatorPrincipalClaimName=\"client_id\" unsecuredValidatorScopeClaimName=\"roles\" unsecuredValidatorRequiredScope=\"LOGIN_TO_KAFKA KAFKA_BROKER\";";
        using var factory = Factory(Tokens.Clock(), jaas);
        var good = Tokens.Unsecured(Tokens.Claims(extra: new() { ["client_id"] = "svc-1", ["roles"] = new[] { "KAFKA_BROKER", "LOGIN_TO_KAFKA", "x" } }));
        var step = Tokens.Exchange(factory, good).First;
        Assert.Equal("User:svc-1", step.Principal);

        var narrow = Tokens.Unsecured(Tokens.Claims(extra: new() { ["client_id"] = "svc-1", ["roles"] = new[] { "LOGIN_TO_KAFKA" } }));
        var (first, final) = Tokens.Exchange(factory, narrow);
        Assert.Equal("{\"status\":\"insufficient_scope\", \"scope\":\"LOGIN_TO_KAFKA KAFKA_BROKER\"}", Encoding.UTF8.GetString(first.Challenge));
        Assert.Equal(SaslOutcome.Failed, final!.Value.Outcome);
        Assert.Contains("KAFKA_BROKER", final.Value.LogReason);
    }

    [Fact]
    public void Librdkafkas_scope_list_satisfies_a_required_scope()
    {
        using var factory = Factory(Tokens.Clock(), Module + " unsecuredValidatorRequiredScope=\"test\";");
        var token = Tokens.LibrdkafkaUnsecured("alice", Tokens.Now, scopeJson: ",\"scope\":[\"test\",\"more\"]");
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, token).First.Outcome);
    }

    [Fact]
    public void An_authzid_must_name_the_tokens_principal()
    {
        using var factory = Factory(Tokens.Clock());
        var token = Tokens.Unsecured(Tokens.Claims());
        Assert.Equal(SaslOutcome.Succeeded, factory.Create().Step(Tokens.FirstMessage(token, gs2: "n,a=alice,")).Outcome);

        var step = factory.Create().Step(Tokens.FirstMessage(token, gs2: "n,a=bob,"));
        Assert.Equal(SaslOutcome.Failed, step.Outcome);
        Assert.Contains("(bob)", step.ClientMessage);
        Assert.Contains("bob", step.LogReason);
    }

    [Fact]
    public void A_malformed_first_message_fails_at_once_with_the_generic_message()
    {
        using var factory = Factory(Tokens.Clock());
        var step = factory.Create().Step("n,,\u0001auth=Basic YWxpY2U=\u0001\u0001"u8);
        Assert.Equal(SaslOutcome.Failed, step.Outcome);
        Assert.Equal("Authentication failed: Invalid credentials", step.ClientMessage);
        Assert.Contains("Bearer", step.LogReason);
    }

    [Fact]
    public void Anything_but_0x01_after_the_error_fails_and_nothing_follows_the_end()
    {
        using var factory = Factory(Tokens.Clock());
        var expired = Tokens.Unsecured(Tokens.Claims(extra: new() { ["exp"] = Tokens.Seconds(Tokens.Now.AddHours(-1)), ["iat"] = Tokens.Seconds(Tokens.Now.AddHours(-2)) }));
        var server = factory.Create();
        Assert.Equal(SaslOutcome.Continue, server.Step(Tokens.FirstMessage(expired)).Outcome);
        var retry = server.Step(Tokens.FirstMessage(Tokens.Unsecured(Tokens.Claims())));
        Assert.Equal(SaslOutcome.Failed, retry.Outcome);
        Assert.Equal("Authentication failed: Invalid credentials", retry.ClientMessage);

        var done = factory.Create();
        Assert.Equal(SaslOutcome.Succeeded, done.Step(Tokens.FirstMessage(Tokens.Unsecured(Tokens.Claims()))).Outcome);
        Assert.Equal(SaslOutcome.Failed, done.Step([0x01]).Outcome);
    }

    /// <summary>The entry Kafka's docs give for OAUTHBEARER, the flag followed at once by ';' (no options), as Kafka's JaasConfig reads it.</summary>
    [Theory]
    [InlineData("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;")]
    [InlineData("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;")]
    public void A_jaas_entry_without_options_is_accepted(string jaas)
    {
        using var factory = Factory(Tokens.Clock(), jaas);
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, Tokens.Unsecured(Tokens.Claims())).First.Outcome);
    }

    [Theory]
    [InlineData("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorAllowableClockSkewMs=\"-1\";")]
    [InlineData("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorAllowableClockSkewMs=\"x\";")]
    [InlineData("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required a=\"b\"")]
    [InlineData("org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule always;")]
    public void Bad_jaas_options_stop_the_factory(string jaas)
    {
        Assert.Throws<OAuthBearerConfigException>(() => Factory(Tokens.Clock(), jaas));
    }
}
