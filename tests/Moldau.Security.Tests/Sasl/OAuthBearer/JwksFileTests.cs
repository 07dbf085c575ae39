using System.Text;
using Microsoft.Extensions.Time.Testing;
using Moldau.Security.Sasl;
using Moldau.Security.Sasl.OAuthBearer;

namespace Moldau.Security.Tests.Sasl.OAuthBearer;

/// <summary>Signed JWTs checked against a JWKS file the test writes (under /tmp/oauth-*).</summary>
public sealed class JwksFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("oauth-").FullName;
    private readonly FakeTimeProvider _clock = Tokens.Clock();
    private readonly List<IDisposable> _owned = [];

    public void Dispose()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        Directory.Delete(_dir, recursive: true);
    }

    private TestKey Key(string alg, string? kid = "k1", int rsaBits = 2048)
    {
        var key = TestKey.Create(alg, kid, rsaBits);
        _owned.Add(key);
        return key;
    }

    private string WriteJwks(params object[] jwks)
    {
        var path = Path.Combine(_dir, "jwks.json");
        File.WriteAllText(path, Tokens.Jwks(jwks));
        return path;
    }

    private OAuthBearerServerFactory Factory(string jwksUrl, Dictionary<string, string>? more = null, List<string>? log = null)
    {
        var factory = new OAuthBearerServerFactory(
            key => key == "sasl.oauthbearer.jwks.endpoint.url" ? jwksUrl : more?.GetValueOrDefault(key),
            _clock,
            new OAuthBearerFactoryOptions { Log = log is null ? null : log.Add });
        _owned.Add(factory);
        return factory;
    }

    private static string Refusal(OAuthBearerServerFactory factory, string token)
    {
        var (first, final) = Tokens.Exchange(factory, token);
        Assert.Equal(SaslOutcome.Continue, first.Outcome);
        Assert.Equal("{\"status\":\"invalid_token\"}", Encoding.UTF8.GetString(first.Challenge));
        Assert.Equal(SaslOutcome.Failed, final!.Value.Outcome);
        Assert.Equal("{\"status\":\"invalid_token\"}", final.Value.ClientMessage);
        return final.Value.LogReason!;
    }

    [Theory]
    [InlineData("RS256")]
    [InlineData("RS384")]
    [InlineData("RS512")]
    [InlineData("PS256")]
    [InlineData("PS384")]
    [InlineData("PS512")]
    [InlineData("ES256")]
    [InlineData("ES384")]
    [InlineData("ES512")]
    public void Accepts_a_token_signed_by_a_key_of_the_set(string alg)
    {
        var key = Key(alg);
        var other = Key(alg.StartsWith("ES", StringComparison.Ordinal) ? "ES256" : "RS256", "k0");
        var factory = Factory(WriteJwks(other.Jwk(), key.Jwk()));
        Assert.True(factory.UsesJwks);
        Assert.True(factory.JwksLoaded.IsCompletedSuccessfully);

        var step = Tokens.Exchange(factory, key.Sign(Tokens.Claims("alice"))).First;
        Assert.Equal(SaslOutcome.Succeeded, step.Outcome);
        Assert.Equal("User:alice", step.Principal);
        Assert.Equal(Tokens.Now.AddHours(1), step.CredentialExpiry);
    }

    [Fact]
    public void Accepts_a_file_url_and_keys_without_alg_or_use()
    {
        var key = Key("ES256");
        var factory = Factory("file://" + WriteJwks(key.Jwk(bare: true)));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, key.Sign(Tokens.Claims())).First.Outcome);
    }

    [Fact]
    public void Refuses_alg_none_when_a_jwks_is_configured()
    {
        var factory = Factory(WriteJwks(Key("RS256").Jwk()));
        Assert.Contains("\"none\"", Refusal(factory, Tokens.LibrdkafkaUnsecured("alice", Tokens.Now)));
    }

    [Fact]
    public void Refuses_an_unknown_kid_until_the_file_has_it()
    {
        var known = Key("RS256", "k1");
        var rotated = Key("RS256", "k2");
        var path = WriteJwks(known.Jwk());
        var factory = Factory(path);
        var token = rotated.Sign(Tokens.Claims());
        Assert.Contains("kid \"k2\"", Refusal(factory, token));

        // The issuer rotates: the next authentication with the new kid reads the file again at once.
        File.WriteAllText(path, Tokens.Jwks(known.Jwk(), rotated.Jwk()));
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, token).First.Outcome);
    }

    [Fact]
    public void Rereads_a_changed_file_and_drops_removed_keys()
    {
        var first = Key("ES256", "k1");
        var second = Key("ES256", "k2");
        var path = WriteJwks(first.Jwk());
        var factory = Factory(path);
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, first.Sign(Tokens.Claims())).First.Outcome);

        File.WriteAllText(path, Tokens.Jwks(second.Jwk()));
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Contains("kid \"k1\"", Refusal(factory, first.Sign(Tokens.Claims())));
    }

    [Fact]
    public void A_broken_rewrite_keeps_the_keys_held()
    {
        var key = Key("RS256");
        var path = WriteJwks(key.Jwk());
        var log = new List<string>();
        var factory = Factory(path, log: log);

        File.WriteAllText(path, "{\"keys\":");
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(5));
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, key.Sign(Tokens.Claims())).First.Outcome);
        Assert.Contains(log, l => l.Contains("keeping the 1 keys held", StringComparison.Ordinal));
    }

    [Fact]
    public void Refuses_a_bad_signature()
    {
        var key = Key("RS256", "k1");
        var impostor = Key("RS256", "k1");
        var factory = Factory(WriteJwks(key.Jwk()));
        Assert.Contains("does not verify", Refusal(factory, impostor.Sign(Tokens.Claims())));

        // Claims changed after signing.
        var parts = key.Sign(Tokens.Claims("alice")).Split('.');
        var forged = parts[0] + "." + Tokens.B64(Encoding.UTF8.GetBytes($"{{\"sub\":\"admin\",\"iat\":{Tokens.Seconds(Tokens.Now)},\"exp\":{Tokens.Seconds(Tokens.Now.AddHours(1))}}}")) + "." + parts[2];
        Assert.Contains("does not verify", Refusal(factory, forged));

        // The signature of an ES256 key used under another alg's name does not fit.
        var ec = Key("ES256", "e1");
        var ecFactory = Factory(WriteJwks(ec.Jwk(bare: true)));
        Assert.Contains("no key", Refusal(ecFactory, ec.Sign(Tokens.Claims(), alg: "ES384")));
        Assert.Contains("no key", Refusal(ecFactory, ec.Sign(Tokens.Claims()) is var t ? t.Replace(t.Split('.')[0], Tokens.B64("{\"alg\":\"RS256\",\"kid\":\"e1\"}"u8.ToArray())) : ""));
    }

    [Fact]
    public void Refuses_an_expired_token_beyond_the_clock_skew()
    {
        var key = Key("RS256");
        var factory = Factory(WriteJwks(key.Jwk()));
        var token = key.Sign(Tokens.Claims());
        _clock.Advance(TimeSpan.FromHours(1) + TimeSpan.FromSeconds(29));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, token).First.Outcome);
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Contains("expired", Refusal(factory, token));
    }

    [Fact]
    public void Refuses_nbf_in_the_future_beyond_the_clock_skew()
    {
        var key = Key("ES384");
        var factory = Factory(WriteJwks(key.Jwk()), new() { ["sasl.oauthbearer.clock.skew.seconds"] = "5" });
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, key.Sign(Tokens.Claims(extra: new() { ["nbf"] = Tokens.Seconds(Tokens.Now.AddSeconds(5)) }))).First.Outcome);
        Assert.Contains("not valid before", Refusal(factory, key.Sign(Tokens.Claims(extra: new() { ["nbf"] = Tokens.Seconds(Tokens.Now.AddSeconds(6)) }))));
    }

    [Theory]
    [InlineData("exp")]
    [InlineData("iat")]
    [InlineData("sub")]
    public void Refuses_a_token_without_a_required_claim(string claim)
    {
        var key = Key("RS256");
        var factory = Factory(WriteJwks(key.Jwk()));
        Assert.Contains(claim == "sub" ? "principal" : claim, Refusal(factory, key.Sign(Tokens.Claims(extra: new() { [claim] = null }))));
    }

    [Fact]
    public void Checks_the_issuer_and_the_audience_when_they_are_configured()
    {
        var key = Key("PS256");
        var factory = Factory(WriteJwks(key.Jwk()), new()
        {
            ["sasl.oauthbearer.expected.issuer"] = "https://idp.example",
            ["sasl.oauthbearer.expected.audience"] = "kafka, moldau",
        });
        var good = new Dictionary<string, object?> { ["iss"] = "https://idp.example", ["aud"] = new[] { "other", "moldau" } };
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, key.Sign(Tokens.Claims(extra: good))).First.Outcome);
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, key.Sign(Tokens.Claims(extra: new() { ["iss"] = "https://idp.example", ["aud"] = "kafka" }))).First.Outcome);

        Assert.Contains("issuer", Refusal(factory, key.Sign(Tokens.Claims(extra: new() { ["iss"] = "https://evil.example", ["aud"] = "kafka" }))));
        Assert.Contains("no iss", Refusal(factory, key.Sign(Tokens.Claims(extra: new() { ["aud"] = "kafka" }))));
        Assert.Contains("audience", Refusal(factory, key.Sign(Tokens.Claims(extra: new() { ["iss"] = "https://idp.example", ["aud"] = new[] { "other" } }))));
        Assert.Contains("audience", Refusal(factory, key.Sign(Tokens.Claims(extra: new() { ["iss"] = "https://idp.example" }))));
    }

    [Fact]
    public void Reads_the_sub_and_scope_claims_named_in_the_config()
    {
        var key = Key("RS256");
        var factory = Factory(WriteJwks(key.Jwk()), new() { ["sasl.oauthbearer.sub.claim.name"] = "client_id", ["sasl.oauthbearer.scope.claim.name"] = "scp" });
        var server = (OAuthBearerServer)factory.Create();
        var step = server.Step(Tokens.FirstMessage(key.Sign(Tokens.Claims("ignored", new() { ["client_id"] = "svc-7", ["scp"] = "read write" }))));
        Assert.Equal("User:svc-7", step.Principal);
        Assert.Equal(["read", "write"], server.Token!.Scope);
    }

    [Fact]
    public void Skips_weak_and_odd_keys_with_a_log_line()
    {
        var weak = Key("RS256", "weak", rsaBits: 1024);
        var good = Key("RS256", "good");
        var log = new List<string>();
        var factory = Factory(WriteJwks(weak.Jwk(), new Dictionary<string, object> { ["kty"] = "oct", ["k"] = "c2VjcmV0" }, new Dictionary<string, object>(good.Jwk()) { ["use"] = "enc" }, good.Jwk()), log: log);
        Assert.Contains(log, l => l.Contains("1024 bits", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains("\"oct\"", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains("\"enc\"", StringComparison.Ordinal));
        Assert.Contains("kid \"weak\"", Refusal(factory, weak.Sign(Tokens.Claims())));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, good.Sign(Tokens.Claims())).First.Outcome);
    }

    [Fact]
    public void Refuses_crit_headers()
    {
        var key = Key("RS256");
        var factory = Factory(WriteJwks(key.Jwk()));
        Assert.Contains("crit", Refusal(factory, key.Sign(Tokens.Claims(), header: new() { ["crit"] = new[] { "b64" }, ["b64"] = false })));
    }

    [Fact]
    public void A_token_without_kid_is_checked_with_the_keys_of_its_alg()
    {
        var key = Key("ES256", kid: null);
        var factory = Factory(WriteJwks(Key("ES256", "other").Jwk(), key.Jwk()));
        Assert.Equal(SaslOutcome.Succeeded, Tokens.Exchange(factory, key.Sign(Tokens.Claims())).First.Outcome);
    }

    [Theory]
    [InlineData("relative/jwks.json")]
    [InlineData("/nonexistent/oauth-jwks.json")]
    [InlineData("ftp://idp.example/jwks")]
    public void A_bad_jwks_location_stops_the_factory(string url)
    {
        var e = Assert.Throws<OAuthBearerConfigException>(() => Factory(url));
        Assert.Contains("sasl.oauthbearer.jwks.endpoint.url", e.Message);
    }

    [Fact]
    public void A_malformed_number_stops_the_factory()
    {
        var path = WriteJwks(Key("RS256").Jwk());
        var e = Assert.Throws<OAuthBearerConfigException>(() => Factory(path, new() { ["sasl.oauthbearer.clock.skew.seconds"] = "thirty" }));
        Assert.Contains("sasl.oauthbearer.clock.skew.seconds", e.Message);
    }
}
