using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Time.Testing;
using Moldau.Security.Sasl;
using Moldau.Security.Sasl.OAuthBearer;

namespace Moldau.Security.Tests.Sasl.OAuthBearer;

/// <summary>A JWKS served over HTTP by a real <see cref="HttpListener"/> on a free port of 127.0.0.1.</summary>
public sealed class JwksHttpTests : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly Task _serving;
    private readonly FakeTimeProvider _clock = Tokens.Clock();
    private readonly List<IDisposable> _owned = [];
    private volatile string _body = "{\"keys\":[]}";
    private volatile int _status = 200;
    private int _requests;

    public JwksHttpTests()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Url = $"http://127.0.0.1:{port}/jwks";
        _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
        _listener.Start();
        _serving = ServeAsync();
    }

    private string Url { get; }

    private int Requests => Volatile.Read(ref _requests);

    public async ValueTask DisposeAsync()
    {
        foreach (var d in _owned)
        {
            d.Dispose();
        }

        _listener.Stop();
        _listener.Close();
        await _serving;
    }

    private async Task ServeAsync()
    {
        while (true)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }

            Interlocked.Increment(ref _requests);
            var bytes = Encoding.UTF8.GetBytes(_body);
            context.Response.StatusCode = _status;
            context.Response.ContentType = "application/json";
            context.Response.ContentLength64 = bytes.Length;
            await context.Response.OutputStream.WriteAsync(bytes);
            context.Response.Close();
        }
    }

    private TestKey Key(string alg, string kid)
    {
        var key = TestKey.Create(alg, kid);
        _owned.Add(key);
        return key;
    }

    private OAuthBearerServerFactory Factory(List<string>? log = null)
    {
        var factory = new OAuthBearerServerFactory(
            key => key switch
            {
                "sasl.oauthbearer.jwks.endpoint.url" => Url,
                "sasl.oauthbearer.jwks.endpoint.refresh.ms" => "60000",
                _ => null,
            },
            _clock,
            new OAuthBearerFactoryOptions { Log = log is null ? null : l => { lock (log) { log.Add(l); } } });
        _owned.Add(factory);
        return factory;
    }

    private static SaslOutcome Outcome(OAuthBearerServerFactory factory, string token) => Tokens.Exchange(factory, token) switch
    {
        (var first, null) => first.Outcome,
        (_, var final) => final.Value.Outcome,
    };

    [Fact]
    public async Task Fetches_the_set_at_start_and_checks_tokens_with_it()
    {
        var key = Key("RS256", "k1");
        _body = Tokens.Jwks(key.Jwk());
        var factory = Factory();
        await factory.JwksLoaded;

        var step = Tokens.Exchange(factory, key.Sign(Tokens.Claims("bob"))).First;
        Assert.Equal(SaslOutcome.Succeeded, step.Outcome);
        Assert.Equal("User:bob", step.Principal);
        Assert.Equal(1, Requests);
    }

    [Fact]
    public async Task Refreshes_the_set_every_refresh_interval()
    {
        var old = Key("ES256", "old");
        var rotated = Key("ES256", "new");
        _body = Tokens.Jwks(old.Jwk());
        var factory = Factory();
        await factory.JwksLoaded;
        Assert.Equal(SaslOutcome.Succeeded, Outcome(factory, old.Sign(Tokens.Claims())));

        _body = Tokens.Jwks(rotated.Jwk());
        _clock.Advance(TimeSpan.FromMilliseconds(60000));
        await factory.Jwks!.LastRefresh;

        Assert.Equal(2, Requests);
        Assert.Equal(SaslOutcome.Succeeded, Outcome(factory, rotated.Sign(Tokens.Claims())));
        Assert.Equal(SaslOutcome.Failed, Outcome(factory, old.Sign(Tokens.Claims())));
    }

    [Fact]
    public async Task An_unknown_kid_fails_and_fetches_the_set_early_at_most_every_ten_seconds()
    {
        var known = Key("RS256", "k1");
        var added = Key("RS256", "k2");
        _body = Tokens.Jwks(known.Jwk());
        var factory = Factory();
        await factory.JwksLoaded;
        _body = Tokens.Jwks(known.Jwk(), added.Jwk());

        // Right after the first fetch, an unknown kid does not fetch again.
        var (_, final) = Tokens.Exchange(factory, added.Sign(Tokens.Claims()));
        Assert.Contains("kid \"k2\"", final!.Value.LogReason);
        await factory.Jwks!.LastRefresh;
        Assert.Equal(1, Requests);

        // Ten seconds on, it does; the refused client's next attempt passes.
        _clock.Advance(JwksSource.ExpediteInterval);
        Assert.Equal(SaslOutcome.Failed, Outcome(factory, added.Sign(Tokens.Claims())));
        await factory.Jwks.LastRefresh;
        Assert.Equal(2, Requests);
        Assert.Equal(SaslOutcome.Succeeded, Outcome(factory, added.Sign(Tokens.Claims())));
    }

    [Fact]
    public async Task A_failed_refresh_keeps_the_keys_it_had()
    {
        var key = Key("PS384", "k1");
        _body = Tokens.Jwks(key.Jwk());
        var log = new List<string>();
        var factory = Factory(log);
        await factory.JwksLoaded;

        _status = 500;
        await factory.Jwks!.RefreshNowAsync();
        _body = "not json";
        _status = 200;
        await factory.Jwks.RefreshNowAsync();

        Assert.Equal(3, Requests);
        Assert.Equal(SaslOutcome.Succeeded, Outcome(factory, key.Sign(Tokens.Claims())));
        lock (log)
        {
            Assert.Equal(2, log.Count(l => l.Contains("keeping the 1 keys held", StringComparison.Ordinal)));
        }
    }

    [Fact]
    public async Task The_first_fetch_is_retried_until_the_endpoint_answers()
    {
        var key = Key("RS256", "k1");
        _status = 503;
        var log = new List<string>();
        var factory = Factory(log);

        // The first attempt fails; the retry waits 100 ms of the (fake) clock.
        while (true)
        {
            lock (log)
            {
                if (log.Count > 0)
                {
                    break;
                }
            }

            await Task.Delay(10);
        }

        Assert.False(factory.JwksLoaded.IsCompleted);
        _body = Tokens.Jwks(key.Jwk());
        _status = 200;
        while (!factory.JwksLoaded.IsCompleted)
        {
            _clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Delay(10);
        }

        await factory.JwksLoaded;
        Assert.Equal(SaslOutcome.Succeeded, Outcome(factory, key.Sign(Tokens.Claims())));
        lock (log)
        {
            Assert.Contains(log, l => l.Contains("503", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void Authentication_fails_when_the_set_never_arrives()
    {
        _status = 404;
        var factory = new OAuthBearerServerFactory(
            key => key == "sasl.oauthbearer.jwks.endpoint.url" ? Url : null,
            _clock,
            new OAuthBearerFactoryOptions { JwksFirstLoadWait = TimeSpan.Zero });
        _owned.Add(factory);
        var (_, final) = Tokens.Exchange(factory, Key("RS256", "k1").Sign(Tokens.Claims()));
        Assert.Contains("no JWKS has been loaded", final!.Value.LogReason);
    }
}
