using System.Text;
using Moldau.Security.Sasl;

namespace Moldau.Security.Tests;

public sealed class ScramSaslServerTests
{
    // RFC 7677 §3: user "user", password "pencil", 4096 iterations.
    private static readonly byte[] Rfc7677Salt = Convert.FromBase64String("W22ZaJ0SNY7soEsUEjb6gQ==");

    [Fact]
    public void Rfc7677_exchange_succeeds_with_its_server_signature()
    {
        var credential = ScramMechanism.Sha256.Credential("pencil", Rfc7677Salt, 4096);
        var server = new ScramSaslServer(ScramMechanism.Sha256, (_, u) => u == "user" ? credential : null, new byte[32])
        {
            ServerNonce = () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        };

        var first = server.Step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"u8);
        Assert.Equal(SaslOutcome.Continue, first.Outcome);
        Assert.Equal("r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", Encoding.UTF8.GetString(first.Challenge));

        var final = server.Step("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="u8);
        Assert.Equal(SaslOutcome.Succeeded, final.Outcome);
        Assert.Equal("User:user", final.Principal);
        Assert.Equal("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=", Encoding.UTF8.GetString(final.Challenge));
    }

    /// <summary>
    /// SCRAM-SHA-512 has no RFC vector: this transcript keeps RFC 7677's user, password, salt and
    /// server nonce, takes a client nonce of the Java client's shape (ScramFormatter.secureRandomString:
    /// 130 random bits in base 36) and its messages as ScramMessages writes them
    /// (<c>n,,n=user,r=nonce</c>; <c>c=biws,r=nonce,p=proof</c>). The proof and the server signature
    /// were computed outside Moldau, with Python's hashlib.pbkdf2_hmac and hmac (SHA-512).
    /// </summary>
    [Fact]
    public void Java_clients_sha512_exchange_gives_the_independently_computed_signature()
    {
        var credential = ScramMechanism.Sha512.Credential("pencil", Rfc7677Salt, 4096);
        var server = new ScramSaslServer(ScramMechanism.Sha512, (_, u) => u == "user" ? credential : null, new byte[32])
        {
            ServerNonce = () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
        };

        var first = server.Step("n,,n=user,r=1a8nfkz4rfb9kfg4gkk0jp6bt5"u8);
        Assert.Equal(SaslOutcome.Continue, first.Outcome);
        Assert.Equal("r=1a8nfkz4rfb9kfg4gkk0jp6bt5%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", Encoding.UTF8.GetString(first.Challenge));

        var final = server.Step("c=biws,r=1a8nfkz4rfb9kfg4gkk0jp6bt5%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=Hft4nb2fLXXbpXzLN7JpfVPC/ncLvPAmJuqWsZ4WWl1OUUOCgF/w2mq0XPXgOxghr6wSpF8zllOemiXfNxqIvA=="u8);
        Assert.Equal(SaslOutcome.Succeeded, final.Outcome);
        Assert.Equal("User:user", final.Principal);
        Assert.Equal("v=d0hH5/1cKdlTO4vp0OmuJZNKDTsRzPXwl2kMgTw/f3B4/GWPn/z8aRCOlzL5qeDVECfaEyiPJgalapP9V0ozew==", Encoding.UTF8.GetString(final.Challenge));
    }

    [Fact]
    public void Rfc7677_proof_with_one_bit_changed_fails_without_saying_why()
    {
        var credential = ScramMechanism.Sha256.Credential("pencil", Rfc7677Salt, 4096);
        var server = new ScramSaslServer(ScramMechanism.Sha256, (_, _) => credential, new byte[32]) { ServerNonce = () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" };
        server.Step("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"u8);
        var final = server.Step("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=eHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="u8);
        Assert.Equal(SaslOutcome.Failed, final.Outcome);
        Assert.Equal("Authentication failed: Invalid credentials", final.ClientMessage);
        Assert.Contains("wrong password", final.LogReason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("SCRAM-SHA-256")]
    [InlineData("SCRAM-SHA-512")]
    public void Client_and_server_agree(string name)
    {
        var mechanism = ScramMechanism.FromName(name)!;
        var store = new Dictionary<string, ScramCredential> { ["alice"] = mechanism.Credential("alice-secret", mechanism.NewSalt(), 4096) };
        var result = ScramClient.Run(new ScramSaslServerFactory(mechanism, (_, u) => store.GetValueOrDefault(u)).Create(), mechanism, "alice", "alice-secret");
        Assert.Equal(SaslOutcome.Succeeded, result.Outcome);
        Assert.Equal("User:alice", result.Principal);
    }

    [Fact]
    public void Wrong_password_and_unknown_user_look_the_same_to_the_client()
    {
        var mechanism = ScramMechanism.Sha512;
        var store = new Dictionary<string, ScramCredential> { ["alice"] = mechanism.Credential("alice-secret", mechanism.NewSalt(), 4096) };
        var factory = new ScramSaslServerFactory(mechanism, (_, u) => store.GetValueOrDefault(u));
        var wrong = ScramClient.Run(factory.Create(), mechanism, "alice", "nope");
        var unknown = ScramClient.Run(factory.Create(), mechanism, "mallory", "nope");
        Assert.Equal(SaslOutcome.Failed, wrong.Outcome);
        Assert.Equal(SaslOutcome.Failed, unknown.Outcome);
        Assert.Equal(wrong.ClientMessage, unknown.ClientMessage);
        Assert.Contains("wrong password", wrong.LogReason, StringComparison.Ordinal);
        Assert.Contains("unknown user", unknown.LogReason, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_user_gets_the_same_salt_each_time()
    {
        var factory = new ScramSaslServerFactory(ScramMechanism.Sha256, (_, _) => null);
        var a = Encoding.UTF8.GetString(factory.Create().Step("n,,n=ghost,r=abc"u8).Challenge);
        var b = Encoding.UTF8.GetString(factory.Create().Step("n,,n=ghost,r=abc"u8).Challenge);
        Assert.Equal(a.Split(',')[1], b.Split(',')[1]);
        Assert.EndsWith(",i=4096", a, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("p=tls-unique,,n=alice,r=abc", "channel binding")]
    [InlineData("y,,n=alice,r=abc", "channel binding")]
    [InlineData("n,,n=alice,r=abc,tokenauth=true", "tokenauth")]
    [InlineData("n,a=bob,n=alice,r=abc", "authorization id")]
    [InlineData("n,,r=abc", "not n=user")]
    [InlineData("n,,n=al=ice,r=abc", "malformed user")]
    [InlineData("hello", "gs2 header")]
    public void Malformed_or_refused_first_messages_fail(string message, string reason)
    {
        var server = new ScramSaslServerFactory(ScramMechanism.Sha256, (_, _) => null).Create();
        var step = server.Step(Encoding.UTF8.GetBytes(message));
        Assert.Equal(SaslOutcome.Failed, step.Outcome);
        Assert.Contains(reason, step.LogReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Authzid_equal_to_the_user_and_escaped_names_are_accepted()
    {
        var mechanism = ScramMechanism.Sha256;
        var credential = mechanism.Credential("pw", mechanism.NewSalt(), 4096);
        var factory = new ScramSaslServerFactory(mechanism, (_, u) => u == "a,b=c" ? credential : null);
        var result = ScramClient.Run(factory.Create(), mechanism, "a,b=c", "pw", authzid: true);
        Assert.Equal(SaslOutcome.Succeeded, result.Outcome);
        Assert.Equal("User:a,b=c", result.Principal);
    }

    [Fact]
    public void A_changed_nonce_or_channel_binding_fails()
    {
        var mechanism = ScramMechanism.Sha256;
        var credential = mechanism.Credential("pw", mechanism.NewSalt(), 4096);
        var factory = new ScramSaslServerFactory(mechanism, (_, _) => credential);
        var nonce = ScramClient.Run(factory.Create(), mechanism, "u", "pw", tamper: m => m.Replace(",p=", "x,p=", StringComparison.Ordinal));
        Assert.Contains("nonce", nonce.LogReason, StringComparison.Ordinal);
        var cut = ScramClient.Run(factory.Create(), mechanism, "u", "pw", tamper: m => m.Replace(",p=", ",p=", StringComparison.Ordinal).Remove(m.IndexOf(",p=", StringComparison.Ordinal) - 1, 1));
        Assert.Contains("nonce", cut.LogReason, StringComparison.Ordinal);
        var binding = ScramClient.Run(factory.Create(), mechanism, "u", "pw", tamper: m => m.Replace("c=biws", "c=eSws", StringComparison.Ordinal));
        Assert.Contains("channel binding", binding.LogReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Credentials_below_the_minimum_iterations_are_not_used()
    {
        var mechanism = ScramMechanism.Sha256;
        var credential = mechanism.Credential("pw", mechanism.NewSalt(), 1000);
        var result = ScramClient.Run(new ScramSaslServerFactory(mechanism, (_, _) => credential).Create(), mechanism, "u", "pw");
        Assert.Equal(SaslOutcome.Failed, result.Outcome);
    }

    [Fact]
    public void A_third_message_fails()
    {
        var mechanism = ScramMechanism.Sha256;
        var credential = mechanism.Credential("pw", mechanism.NewSalt(), 4096);
        var server = new ScramSaslServerFactory(mechanism, (_, _) => credential).Create();
        Assert.Equal(SaslOutcome.Succeeded, ScramClient.Run(server, mechanism, "u", "pw").Outcome);
        Assert.Equal(SaslOutcome.Failed, server.Step("c=biws"u8).Outcome);
    }

    /// <summary>The client side of SCRAM, as the Java client and librdkafka send it.</summary>
    internal static class ScramClient
    {
        public static SaslStep Run(ISaslServer server, ScramMechanism mechanism, string user, string password, bool authzid = false, Func<string, string>? tamper = null)
        {
            var name = user.Replace("=", "=3D", StringComparison.Ordinal).Replace(",", "=2C", StringComparison.Ordinal);
            var gs2 = authzid ? $"n,a={name}," : "n,,";
            var clientNonce = Convert.ToBase64String(System.Security.Cryptography.RandomNumberGenerator.GetBytes(18));
            var clientFirstBare = $"n={name},r={clientNonce}";
            var first = server.Step(Encoding.UTF8.GetBytes(gs2 + clientFirstBare));
            if (first.Outcome != SaslOutcome.Continue)
            {
                return first;
            }

            var serverFirst = Encoding.UTF8.GetString(first.Challenge);
            var parts = serverFirst.Split(',').ToDictionary(p => p[..1], p => p[2..]);
            Assert.StartsWith(clientNonce, parts["r"], StringComparison.Ordinal);
            var salted = mechanism.SaltedPassword(password, Convert.FromBase64String(parts["s"]), int.Parse(parts["i"], System.Globalization.CultureInfo.InvariantCulture));
            var withoutProof = $"c={Convert.ToBase64String(Encoding.UTF8.GetBytes(gs2))},r={parts["r"]}";
            var authMessage = Encoding.UTF8.GetBytes(clientFirstBare + "," + serverFirst + "," + withoutProof);
            var clientKey = mechanism.Hmac(salted, "Client Key"u8);
            var signature = mechanism.Hmac(mechanism.HashOf(clientKey), authMessage);
            var proof = clientKey.Zip(signature, (a, b) => (byte)(a ^ b)).ToArray();
            var final = withoutProof + ",p=" + Convert.ToBase64String(proof);
            var step = server.Step(Encoding.UTF8.GetBytes(tamper is null ? final : tamper(final)));
            if (step.Outcome == SaslOutcome.Succeeded)
            {
                var expected = "v=" + Convert.ToBase64String(mechanism.Hmac(mechanism.Hmac(salted, "Server Key"u8), authMessage));
                Assert.Equal(expected, Encoding.UTF8.GetString(step.Challenge));
            }

            return step;
        }
    }
}
