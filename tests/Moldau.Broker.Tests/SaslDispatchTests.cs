using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Moldau.Broker.Authorization;
using Moldau.Broker.Handlers;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Security.Sasl;

namespace Moldau.Broker.Tests;

/// <summary>SaslHandshake, SaslAuthenticate and the SCRAM admin APIs through the broker's dispatcher, on sessions of a SASL listener.</summary>
public sealed class SaslDispatchTests : IAsyncDisposable
{
    private const string Jaas = "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"admin-secret\" user_admin=\"admin-secret\" user_alice=\"alice-secret\";";
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private readonly BrokerHarness _harness;
    private int _correlation;
    private long _sessions;

    public SaslDispatchTests()
    {
        _harness = BrokerHarness.Start(o => o.Properties = Properties(), _time);
    }

    private KafkaBroker Broker => _harness.Broker;

    private static Dictionary<string, string> Properties(string reauthMs = "0") => new()
    {
        ["listener.name.sasl_plaintext.sasl.enabled.mechanisms"] = "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        ["listener.name.sasl_plaintext.plain.sasl.jaas.config"] = Jaas,
        ["connection.failed.authentication.delay.ms"] = "0",
        ["connections.max.reauth.ms"] = reauthMs,
    };

    public async ValueTask DisposeAsync() => await _harness.DisposeAsync();

    private ConnectionSession NewSession() => new(Interlocked.Increment(ref _sessions), null, "SASL_PLAINTEXT", "SASL_PLAINTEXT", requiresAuthentication: true);

    private static ConnectionSession Plaintext() => new(1000, null, "PLAINTEXT");

    /// <summary>One request: the decoded response (null when there was none) and whether the connection closes after it.</summary>
    private async Task<(T? Response, bool Closed, string? Reason)> Send<T>(ConnectionSession session, ApiKey key, short version, IKafkaMessage request)
        where T : class, IKafkaMessage, new()
    {
        var correlation = ++_correlation;
        var result = await Broker.Dispatch(BrokerHarness.Frame(key, version, correlation, request), session, CancellationToken.None);
        T? response = null;
        if (result.Response is { } frame)
        {
            var spec = ApiSpecs.Find((short)key)!;
            response = BrokerHarness.Decode<T>(frame.AsSpan(0, result.Length).ToArray(), correlation, spec.ResponseHeaderVersion(version), version);
            if (result.Pooled)
            {
                ArrayPool<byte>.Shared.Return(frame);
            }
        }

        return (response, result.Close, result.CloseReason);
    }

    private async Task<SaslHandshakeResponse> Handshake(ConnectionSession session, string mechanism, short version = 1)
    {
        var (response, closed, reason) = await Send<SaslHandshakeResponse>(session, ApiKey.SaslHandshake, version, new SaslHandshakeRequest { Mechanism = mechanism });
        Assert.False(closed, reason);
        Assert.Equal(0, response!.ErrorCode);
        return response;
    }

    private Task<(SaslAuthenticateResponse? Response, bool Closed, string? Reason)> Authenticate(ConnectionSession session, byte[] token, short version = 2) =>
        Send<SaslAuthenticateResponse>(session, ApiKey.SaslAuthenticate, version, new SaslAuthenticateRequest { AuthBytes = token });

    private static byte[] Plain(string user, string password) => Encoding.UTF8.GetBytes($"\0{user}\0{password}");

    /// <summary>A SCRAM login as the Java client does it: handshake, client-first, client-final; the last response.</summary>
    private async Task<(SaslAuthenticateResponse? Response, bool Closed, string? Reason)> Scram(ConnectionSession session, ScramMechanism mechanism, string user, string password, short version = 2)
    {
        await Handshake(session, mechanism.Name);
        var clientNonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        var clientFirstBare = $"n={user},r={clientNonce}";
        var first = await Authenticate(session, Encoding.UTF8.GetBytes("n,," + clientFirstBare), version);
        Assert.False(first.Closed, first.Reason);
        var serverFirst = Encoding.UTF8.GetString(first.Response!.AuthBytes);
        var parts = serverFirst.Split(',').ToDictionary(p => p[..1], p => p[2..]);
        var salted = mechanism.SaltedPassword(password, Convert.FromBase64String(parts["s"]), int.Parse(parts["i"], System.Globalization.CultureInfo.InvariantCulture));
        var withoutProof = $"c=biws,r={parts["r"]}";
        var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + withoutProof);
        var clientKey = mechanism.Hmac(salted, "Client Key"u8);
        var signature = mechanism.Hmac(mechanism.HashOf(clientKey), authMessage);
        var proof = clientKey.Zip(signature, (a, b) => (byte)(a ^ b)).ToArray();
        return await Authenticate(session, Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof)), version);
    }

    private async Task<AlterUserScramCredentialsResponse> Alter(IEnumerable<AlterUserScramCredentialsRequest.ScramCredentialUpsertion> upsertions, IEnumerable<AlterUserScramCredentialsRequest.ScramCredentialDeletion>? deletions = null)
    {
        var (response, closed, reason) = await Send<AlterUserScramCredentialsResponse>(Plaintext(), ApiKey.AlterUserScramCredentials, 0, new AlterUserScramCredentialsRequest { Upsertions = [.. upsertions], Deletions = [.. deletions ?? []] });
        Assert.False(closed, reason);
        return response!;
    }

    private static AlterUserScramCredentialsRequest.ScramCredentialUpsertion Upsert(string user, ScramMechanism mechanism, string password, int iterations = 4096, sbyte? type = null)
    {
        var salt = RandomNumberGenerator.GetBytes(16);
        return new() { Name = user, Mechanism = type ?? mechanism.Type, Iterations = iterations, Salt = salt, SaltedPassword = mechanism.SaltedPassword(password, salt, Math.Max(1, iterations)) };
    }

    [Fact]
    [Covers(ApiKey.SaslHandshake)]
    [Covers(ApiKey.SaslAuthenticate)]
    public async Task PlainLoginOpensTheOtherApisAsTheUser()
    {
        var session = NewSession();
        var handshake = await Handshake(session, "PLAIN");
        Assert.Equal(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], handshake.Mechanisms);
        var (response, closed, _) = await Authenticate(session, Plain("alice", "alice-secret"));
        Assert.False(closed);
        Assert.Equal(0, response!.ErrorCode);
        Assert.Equal(0, response.SessionLifetimeMs);
        Assert.Equal(AuthenticationState.Authenticated, session.Authentication);
        Assert.Equal("User:alice", session.Principal);
        var (metadata, metadataClosed, _) = await Send<MetadataResponse>(session, ApiKey.Metadata, 12, new MetadataRequest());
        Assert.False(metadataClosed);
        Assert.NotNull(metadata);
    }

    [Theory]
    [InlineData("alice", "wrong")]
    [InlineData("mallory", "alice-secret")]
    public async Task AFailedPlainLoginIsAnsweredWithoutSayingWhyAndCloses(string user, string password)
    {
        var session = NewSession();
        await Handshake(session, "PLAIN");
        var (response, closed, reason) = await Authenticate(session, Plain(user, password));
        Assert.True(closed);
        Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, response!.ErrorCode);
        Assert.Equal("Authentication failed: Invalid credentials", response.ErrorMessage);
        Assert.Contains(user == "alice" ? "wrong password" : "unknown user", reason, StringComparison.Ordinal);
        Assert.Equal(AuthenticationState.Pending, session.Authentication);
    }

    [Theory]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("SCRAM-SHA-512")]
    [Covers(ApiKey.SaslHandshake)]
    [Covers(ApiKey.SaslAuthenticate)]
    [Covers(ApiKey.AlterUserScramCredentials)]
    public async Task ScramCredentialsSetThroughTheAdminApiLogIn(string name)
    {
        var mechanism = ScramMechanism.FromName(name)!;
        var altered = await Alter([Upsert("alice", mechanism, "alice-secret", 8192)]);
        Assert.Equal(0, Assert.Single(altered.Results).ErrorCode);
        var session = NewSession();
        var (response, closed, reason) = await Scram(session, mechanism, "alice", "alice-secret");
        Assert.False(closed, reason);
        Assert.Equal(0, response!.ErrorCode);
        Assert.StartsWith("v=", Encoding.UTF8.GetString(response.AuthBytes), StringComparison.Ordinal);
        Assert.Equal("User:alice", session.Principal);

        var wrong = await Scram(NewSession(), mechanism, "alice", "alice-secreT");
        Assert.True(wrong.Closed);
        Assert.Equal((short)ErrorCode.SaslAuthenticationFailed, wrong.Response!.ErrorCode);
    }

    [Fact]
    public async Task AnUnknownMechanismIsRefusedWithTheEnabledListAndCloses()
    {
        var (response, closed, reason) = await Send<SaslHandshakeResponse>(NewSession(), ApiKey.SaslHandshake, 1, new SaslHandshakeRequest { Mechanism = "GSSAPI" });
        Assert.True(closed);
        Assert.Equal((short)ErrorCode.UnsupportedSaslMechanism, response!.ErrorCode);
        Assert.Equal(["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], response.Mechanisms);
        Assert.Contains("GSSAPI", reason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OutOfOrderFramesAreIllegalSaslState()
    {
        // A token before any handshake: refused and closed.
        var (early, earlyClosed, _) = await Authenticate(NewSession(), Plain("alice", "alice-secret"));
        Assert.True(earlyClosed);
        Assert.Equal((short)ErrorCode.IllegalSaslState, early!.ErrorCode);

        // A second handshake in the middle of an exchange: refused and closed.
        var session = NewSession();
        await Handshake(session, "SCRAM-SHA-256");
        var (again, againClosed, _) = await Send<SaslHandshakeResponse>(session, ApiKey.SaslHandshake, 1, new SaslHandshakeRequest { Mechanism = "PLAIN" });
        Assert.True(againClosed);
        Assert.Equal((short)ErrorCode.IllegalSaslState, again!.ErrorCode);

        // A token after a successful login: answered, the connection stays (as Kafka's KafkaApis).
        var done = NewSession();
        await Handshake(done, "PLAIN");
        await Authenticate(done, Plain("alice", "alice-secret"));
        var (after, afterClosed, _) = await Authenticate(done, Plain("alice", "alice-secret"));
        Assert.False(afterClosed);
        Assert.Equal((short)ErrorCode.IllegalSaslState, after!.ErrorCode);

        // On a listener without SASL: answered, not closed.
        var (plain, plainClosed, _) = await Send<SaslHandshakeResponse>(Plaintext(), ApiKey.SaslHandshake, 1, new SaslHandshakeRequest { Mechanism = "PLAIN" });
        Assert.False(plainClosed);
        Assert.Equal((short)ErrorCode.IllegalSaslState, plain!.ErrorCode);
    }

    [Fact]
    public async Task NothingButApiVersionsAndSaslIsServedBeforeAuthentication()
    {
        var session = NewSession();
        var (versions, _, _) = await Send<ApiVersionsResponse>(session, ApiKey.ApiVersions, 3, new ApiVersionsRequest());
        Assert.Contains(versions!.ApiKeys, k => k.ApiKey == (short)ApiKey.SaslAuthenticate && k.MaxVersion == 2);
        Assert.Contains(versions.ApiKeys, k => k.ApiKey == (short)ApiKey.SaslHandshake && k.MaxVersion == 1);
        await Handshake(session, "PLAIN");
        var produce = await Send<ProduceResponse>(session, ApiKey.Produce, 9, new ProduceRequest { Acks = 1, TimeoutMs = 1000 });
        Assert.True(produce.Closed);
        Assert.Null(produce.Response);
        Assert.Contains("before authentication", produce.Reason, StringComparison.Ordinal);
    }

    /// <summary>A bare token frame as a client sends it after SaslHandshake v0; the bare answer's token, or null when the connection closes.</summary>
    private async Task<(byte[]? Token, DispatchResult Result)> RawToken(ConnectionSession session, byte[] token)
    {
        var result = await Broker.Dispatch(token, session, CancellationToken.None);
        if (result.Response is not { } frame)
        {
            return (null, result);
        }

        // A bare size-prefixed token: no response header, no correlation id.
        Assert.Equal(result.Length - 4, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(frame));
        return (frame.AsSpan(4, result.Length - 4).ToArray(), result);
    }

    [Fact]
    public async Task AfterAVersion0HandshakeTheExchangeRunsOverBareTokens()
    {
        // PLAIN (kafka-python sends the user as authzid too): a size-prefixed empty token answers success.
        var plain = NewSession();
        await Handshake(plain, "PLAIN", version: 0);
        var (empty, ok) = await RawToken(plain, Encoding.UTF8.GetBytes("alice\0alice\0alice-secret"));
        Assert.False(ok.Close, ok.CloseReason);
        Assert.Equal([0, 0, 0, 0], ok.Response.AsSpan(0, ok.Length).ToArray());
        Assert.Empty(empty!);
        Assert.Equal("User:alice", plain.Principal);
        var (metadata, metadataClosed, _) = await Send<MetadataResponse>(plain, ApiKey.Metadata, 12, new MetadataRequest());
        Assert.False(metadataClosed);
        Assert.NotNull(metadata);

        // A wrong password can't be answered in this framing: the connection closes, the reason in the log line.
        var wrong = NewSession();
        await Handshake(wrong, "PLAIN", version: 0);
        var (none, refused) = await RawToken(wrong, Plain("alice", "nope"));
        Assert.Null(none);
        Assert.True(refused.Close);
        Assert.Contains("wrong password for user", refused.CloseReason, StringComparison.Ordinal);
        Assert.Equal(AuthenticationState.Pending, wrong.Authentication);

        // Even a frame that reads as a SaslAuthenticate request is a token here, as in Kafka.
        var framed = NewSession();
        await Handshake(framed, "PLAIN", version: 0);
        var (_, asToken) = await RawToken(framed, BrokerHarness.Frame(ApiKey.SaslAuthenticate, 0, 1, new SaslAuthenticateRequest { AuthBytes = Plain("alice", "alice-secret") }));
        Assert.True(asToken.Close);
        Assert.Equal(AuthenticationState.Pending, framed.Authentication);

        // SCRAM-SHA-512: server-first and server-final come back as bare tokens.
        var mechanism = ScramMechanism.Sha512;
        await Alter([Upsert("carol", mechanism, "carol-secret")]);
        var scram = NewSession();
        await Handshake(scram, mechanism.Name, version: 0);
        var clientFirstBare = "n=carol,r=" + Convert.ToBase64String(RandomNumberGenerator.GetBytes(18));
        var (serverFirstBytes, first) = await RawToken(scram, Encoding.UTF8.GetBytes("n,," + clientFirstBare));
        Assert.False(first.Close, first.CloseReason);
        var serverFirst = Encoding.UTF8.GetString(serverFirstBytes!);
        var parts = serverFirst.Split(',').ToDictionary(p => p[..1], p => p[2..]);
        var salted = mechanism.SaltedPassword("carol-secret", Convert.FromBase64String(parts["s"]), int.Parse(parts["i"], System.Globalization.CultureInfo.InvariantCulture));
        var withoutProof = $"c=biws,r={parts["r"]}";
        var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + withoutProof);
        var clientKey = mechanism.Hmac(salted, "Client Key"u8);
        var proof = clientKey.Zip(mechanism.Hmac(mechanism.HashOf(clientKey), authMessage), (a, b) => (byte)(a ^ b)).ToArray();
        var (serverFinal, final) = await RawToken(scram, Encoding.UTF8.GetBytes(withoutProof + ",p=" + Convert.ToBase64String(proof)));
        Assert.False(final.Close, final.CloseReason);
        var expected = mechanism.Hmac(mechanism.Hmac(salted, "Server Key"u8), authMessage);
        Assert.Equal("v=" + Convert.ToBase64String(expected), Encoding.UTF8.GetString(serverFinal!));
        Assert.Equal("User:carol", scram.Principal);
        Assert.Equal(AuthenticationState.Authenticated, scram.Authentication);

        // Once the exchange is over, frames are Kafka requests again.
        Assert.False((await Send<MetadataResponse>(scram, ApiKey.Metadata, 12, new MetadataRequest())).Closed);
    }

    [Fact]
    public async Task AnExpiredSessionIsClosedAtItsNextRequestUnlessItReauthenticates()
    {
        await using var harness = BrokerHarness.Start(o => o.Properties = Properties(reauthMs: "60000"), _time);
        var broker = harness.Broker;
        async Task<DispatchResult> Metadata(ConnectionSession s) => await broker.Dispatch(BrokerHarness.Frame(ApiKey.Metadata, 12, ++_correlation, new MetadataRequest()), s, CancellationToken.None);
        async Task<SaslAuthenticateResponse> Login(ConnectionSession s, string user, short version = 2)
        {
            var h = await broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslHandshake, 1, ++_correlation, new SaslHandshakeRequest { Mechanism = "PLAIN" }), s, CancellationToken.None);
            Assert.False(h.Close, h.CloseReason);
            var correlation = ++_correlation;
            var a = await broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslAuthenticate, version, correlation, new SaslAuthenticateRequest { AuthBytes = Plain(user, user + "-secret") }), s, CancellationToken.None);
            return BrokerHarness.Decode<SaslAuthenticateResponse>(a.Response.AsSpan(0, a.Length).ToArray(), correlation, 2, version);
        }

        var lapsed = NewSession();
        Assert.Equal(60000, (await Login(lapsed, "alice")).SessionLifetimeMs);
        var renewed = NewSession();
        await Login(renewed, "alice");
        Assert.False((await Metadata(lapsed)).Close);

        _time.Advance(TimeSpan.FromSeconds(61));
        var closed = await Metadata(lapsed);
        Assert.True(closed.Close);
        Assert.Contains("expired", closed.CloseReason, StringComparison.Ordinal);

        // Re-authentication over the same connection starts a new session.
        Assert.Equal(0, (await Login(renewed, "alice")).ErrorCode);
        Assert.False((await Metadata(renewed)).Close);

        // Re-authenticating as someone else fails and closes.
        var other = NewSession();
        await Login(other, "alice");
        var h2 = await broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslHandshake, 1, ++_correlation, new SaslHandshakeRequest { Mechanism = "PLAIN" }), other, CancellationToken.None);
        Assert.False(h2.Close);
        var switched = await broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslAuthenticate, 2, ++_correlation, new SaslAuthenticateRequest { AuthBytes = Plain("admin", "admin-secret") }), other, CancellationToken.None);
        Assert.True(switched.Close);
        Assert.Contains("changes the principal", switched.CloseReason, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFailedLoginIsAnsweredAfterTheConfiguredDelay()
    {
        var properties = Properties();
        properties["connection.failed.authentication.delay.ms"] = "5000";
        await using var harness = BrokerHarness.Start(o => o.Properties = properties, _time);
        var session = NewSession();
        await harness.Broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslHandshake, 1, 1, new SaslHandshakeRequest { Mechanism = "PLAIN" }), session, CancellationToken.None);
        var pending = harness.Broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslAuthenticate, 2, 2, new SaslAuthenticateRequest { AuthBytes = Plain("alice", "nope") }), session, CancellationToken.None).AsTask();

        // Another connection logs in meanwhile.
        var other = NewSession();
        await harness.Broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslHandshake, 1, 3, new SaslHandshakeRequest { Mechanism = "PLAIN" }), other, CancellationToken.None);
        var ok = await harness.Broker.Dispatch(BrokerHarness.Frame(ApiKey.SaslAuthenticate, 2, 4, new SaslAuthenticateRequest { AuthBytes = Plain("alice", "alice-secret") }), other, CancellationToken.None);
        Assert.False(ok.Close);
        Assert.False(pending.IsCompleted);

        _time.Advance(TimeSpan.FromSeconds(5));
        var failed = await pending;
        Assert.True(failed.Close);
        Assert.NotNull(failed.Response);
    }

    [Fact]
    [Covers(ApiKey.AlterUserScramCredentials)]
    [Covers(ApiKey.DescribeUserScramCredentials)]
    public async Task AdminApisAnswerKafkasPerUserErrors()
    {
        var sha256 = ScramMechanism.Sha256;
        var altered = await Alter(
            [
                Upsert("alice", sha256, "a"),
                Upsert("few", sha256, "a", iterations: 1000),
                Upsert("many", sha256, "a", iterations: 20000),
                Upsert("unknown", sha256, "a", type: 0),
                Upsert("twice", sha256, "a"),
                Upsert("twice", sha256, "b"),
                Upsert(string.Empty, sha256, "a"),
            ],
            [new() { Name = "ghost", Mechanism = sha256.Type }]);
        var errors = altered.Results.ToDictionary(r => r.User, r => (ErrorCode)r.ErrorCode);
        Assert.Equal(ErrorCode.None, errors["alice"]);
        Assert.Equal(ErrorCode.UnacceptableCredential, errors["few"]);
        Assert.Equal(ErrorCode.UnacceptableCredential, errors["many"]);
        Assert.Equal(ErrorCode.UnsupportedSaslMechanism, errors["unknown"]);
        Assert.Equal(ErrorCode.DuplicateResource, errors["twice"]);
        Assert.Equal(ErrorCode.UnacceptableCredential, errors[string.Empty]);
        Assert.Equal(ErrorCode.ResourceNotFound, errors["ghost"]);

        await Alter([Upsert("alice", ScramMechanism.Sha512, "a", 16384)]);
        var (all, _, _) = await Send<DescribeUserScramCredentialsResponse>(Plaintext(), ApiKey.DescribeUserScramCredentials, 0, new DescribeUserScramCredentialsRequest { Users = null });
        var alice = Assert.Single(all!.Results);
        Assert.Equal("alice", alice.User);
        Assert.Equal([(1, 4096), (2, 16384)], alice.CredentialInfos.Select(c => ((int)c.Mechanism, c.Iterations)));

        var (some, _, _) = await Send<DescribeUserScramCredentialsResponse>(Plaintext(), ApiKey.DescribeUserScramCredentials, 0, new DescribeUserScramCredentialsRequest
        {
            Users = [new() { Name = "alice" }, new() { Name = "bob" }, new() { Name = "dup" }, new() { Name = "dup" }],
        });
        Assert.Equal([ErrorCode.None, ErrorCode.ResourceNotFound, ErrorCode.DuplicateResource], some!.Results.Select(r => (ErrorCode)r.ErrorCode));

        // Deleting one mechanism leaves the other.
        var deleted = await Alter([], [new() { Name = "alice", Mechanism = sha256.Type }]);
        Assert.Equal(0, Assert.Single(deleted.Results).ErrorCode);
        Assert.Null(Broker.State.Topics.Image.ScramCredentials.Find(sha256, "alice"));
        Assert.NotNull(Broker.State.Topics.Image.ScramCredentials.Find(ScramMechanism.Sha512, "alice"));
    }

    [Fact]
    public async Task AdminApisNeedClusterDescribeAndAlter()
    {
        var state = new BrokerState(Broker.State.Options, Broker.State.Topics, "cluster", _time, NullLogger.Instance) { Authorizer = new DenyAll() };
        var context = new RequestContext(new RequestHeader(), Plaintext(), CancellationToken.None);
        var describe = await new DescribeUserScramCredentialsHandler(state).HandleAsync(context, new DescribeUserScramCredentialsRequest(), CancellationToken.None);
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, describe.ErrorCode);
        var alter = await new AlterUserScramCredentialsHandler(state).HandleAsync(context, new AlterUserScramCredentialsRequest { Upsertions = [Upsert("alice", ScramMechanism.Sha256, "a")] }, CancellationToken.None);
        Assert.Equal((short)ErrorCode.ClusterAuthorizationFailed, Assert.Single(alter.Results).ErrorCode);
        Assert.Empty(Broker.State.Topics.Image.ScramCredentials.Users);
    }

    [Fact]
    public async Task CredentialsSurviveARestartAndAddScramWritesOnce()
    {
        var dir = Path.Combine(Path.GetTempPath(), "moldau-sasl-restart-" + Guid.NewGuid().ToString("N")[..10]);
        var options = new BrokerOptions { LogDirs = [dir], Properties = Properties(), AdvertisedEndpoints = [new("SASL_PLAINTEXT", "broker.test", 9092)] };
        try
        {
            var spec = ScramCredentialSpec.Parse("SCRAM-SHA-512=[name=bob,password=bob-secret,iterations=8192]");
            await using (var first = new KafkaBroker(options, NullLoggerFactory.Instance, _time))
            {
                first.Start();
                Moldau.Broker.Security.ScramBootstrap.Apply(first, [spec]);
            }

            await using var second = new KafkaBroker(options, NullLoggerFactory.Instance, _time);
            second.Start();
            var stored = second.State.Topics.Image.ScramCredentials.Find(ScramMechanism.Sha512, "bob");
            Assert.NotNull(stored);
            Assert.Equal(8192, stored.Iterations);

            // The same option at the next start finds the credential stored and writes nothing.
            Moldau.Broker.Security.ScramBootstrap.Apply(second, [spec]);
            Assert.Same(stored, second.State.Topics.Image.ScramCredentials.Find(ScramMechanism.Sha512, "bob"));

            var session = NewSession();
            var h = await second.Dispatch(BrokerHarness.Frame(ApiKey.SaslHandshake, 1, 1, new SaslHandshakeRequest { Mechanism = "SCRAM-SHA-512" }), session, CancellationToken.None);
            Assert.False(h.Close);
            var server = new ScramSaslServerFactory(ScramMechanism.Sha512, (_, _) => stored).Create();
            Assert.Equal(SaslOutcome.Continue, server.Step("n,,n=bob,r=abc"u8).Outcome);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private sealed class DenyAll : IAuthorizer
    {
        public bool Authorize(RequestContext context, AclOperation operation, ResourceType type, string name) => false;

        public bool AuthorizeAny(RequestContext context, AclOperation operation, ResourceType type) => false;
    }
}
