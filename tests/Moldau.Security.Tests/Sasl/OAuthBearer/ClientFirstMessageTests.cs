using System.Text;
using Moldau.Security.Sasl.OAuthBearer;

namespace Moldau.Security.Tests.Sasl.OAuthBearer;

public sealed class ClientFirstMessageTests
{
    private const string Jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";

    private static OAuthBearerClientFirstMessage Parse(string text)
    {
        Assert.True(OAuthBearerClientFirstMessage.TryParse(Encoding.ASCII.GetBytes(text), out var m, out var error), error);
        return m;
    }

    [Fact]
    public void Reads_the_java_clients_bytes_without_extensions()
    {
        // OAuthBearerClientInitialResponse.toBytes(): "n,%s,%sauth=Bearer %s%s%s%s" with authzid "",
        // SEPARATOR, the token, no extensions, SEPARATOR, SEPARATOR.
        var bytes = "n,,\u0001auth=Bearer "u8.ToArray().Concat(Encoding.ASCII.GetBytes(Jwt)).Concat(new byte[] { 0x01, 0x01 }).ToArray();
        Assert.True(OAuthBearerClientFirstMessage.TryParse(bytes, out var m, out _));
        Assert.Equal(Jwt, m.Token);
        Assert.Null(m.AuthorizationId);
        Assert.Empty(m.Extensions);
    }

    [Fact]
    public void Reads_the_java_clients_extensions_after_the_token()
    {
        // Java: extensions joined by 0x01, after "auth=Bearer <token>" and a 0x01, then 0x01 0x01.
        var m = Parse("n,,\u0001auth=Bearer " + Jwt + "\u0001logicalCluster=lkc-123\u0001traceId=a b\tc\u0001\u0001");
        Assert.Equal(Jwt, m.Token);
        Assert.Equal(new Dictionary<string, string> { ["logicalCluster"] = "lkc-123", ["traceId"] = "a b\tc" }, m.Extensions);
    }

    [Fact]
    public void Reads_librdkafkas_bytes()
    {
        // rd_kafka_sasl_oauthbearer_build_client_first_message: "%s%sauth=Bearer %s%s" with gs2
        // header "n,,", kvsep 0x01, the token, 0x01; each extension "%s=%s%s"; a final 0x01.
        // sasl.oauthbearer.config=principal=alice extension_traceId=123 gives one extension.
        var m = Parse("n,,\u0001auth=Bearer " + Jwt + "\u0001traceId=123\u0001\u0001");
        Assert.Equal(Jwt, m.Token);
        Assert.Equal("123", m.Extensions["traceId"]);
    }

    [Fact]
    public void Reads_the_rfc7628_example_but_its_padded_token_as_kafka_does()
    {
        // RFC 7628 §4.1: authzid, host and port key/value pairs before auth, then a bearer token.
        const string Example = "n,a=user@example.com,\u0001host=server.example.com\u0001port=143\u0001auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\u0001\u0001";

        // Kafka's OAuthBearerClientInitialResponse admits tokens of [-_.a-zA-Z0-9] only (JWTs), so
        // the example's base64 padding is refused there and here.
        Assert.False(OAuthBearerClientFirstMessage.TryParse(Encoding.ASCII.GetBytes(Example), out _, out var error));
        Assert.Contains("[-_.a-zA-Z0-9]", error, StringComparison.Ordinal);

        var m = Parse(Example.Replace("Cg==", "Cg", StringComparison.Ordinal));
        Assert.Equal("user@example.com", m.AuthorizationId);
        Assert.Equal("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg", m.Token);
        Assert.Equal("server.example.com", m.Extensions["host"]);
        Assert.Equal("143", m.Extensions["port"]);
    }

    [Fact]
    public void Decodes_an_authzid()
    {
        Assert.Equal("alice", Parse("n,a=alice,\u0001auth=Bearer " + Jwt + "\u0001\u0001").AuthorizationId);
        Assert.Equal("a,b=c", Parse("n,a=a=2Cb=3Dc,\u0001auth=Bearer " + Jwt + "\u0001\u0001").AuthorizationId);
    }

    [Fact]
    public void Reads_the_scheme_in_any_case_and_auth_after_extensions()
    {
        var m = Parse("y,,\u0001host=broker\u0001auth=bearer  " + Jwt + "\u0001\u0001");
        Assert.Equal(Jwt, m.Token);
        Assert.Equal("broker", m.Extensions["host"]);
    }

    [Theory]
    [InlineData("")]
    [InlineData("\u0001")]
    [InlineData("p=tls-unique,,\u0001auth=Bearer abc\u0001\u0001")]
    [InlineData("n,\u0001auth=Bearer abc\u0001\u0001")]
    [InlineData("n,,\u0001auth=Bearer abc\u0001")]
    [InlineData("n,,auth=Bearer abc\u0001\u0001")]
    [InlineData("n,,\u0001\u0001")]
    [InlineData("n,,\u0001auth=Basic abc\u0001\u0001")]
    [InlineData("n,,\u0001auth=Bearer\u0001\u0001")]
    [InlineData("n,,\u0001auth=Bearer a+b/c=\u0001\u0001")]
    [InlineData("n,,\u0001auth=Bearer abc\u0001tr4ce=1\u0001\u0001")]
    [InlineData("n,,\u0001auth=Bearer abc\u0001trace=\u0001\u0001")]
    [InlineData("n,,\u0001auth=Bearer abc\u0001trace\u0001\u0001")]
    [InlineData("n,b=alice,\u0001auth=Bearer abc\u0001\u0001")]
    [InlineData("n,a=al=ice,\u0001auth=Bearer abc\u0001\u0001")]
    [InlineData("n,a=,\u0001auth=Bearer abc\u0001\u0001")]
    public void Refuses_malformed_messages(string text)
    {
        Assert.False(OAuthBearerClientFirstMessage.TryParse(Encoding.Latin1.GetBytes(text), out _, out var error));
        Assert.False(string.IsNullOrEmpty(error));
    }

    [Fact]
    public void Refuses_non_ascii_values()
    {
        var bytes = Encoding.UTF8.GetBytes("n,,\u0001auth=Bearer abc\u0001k=\u00e9\u0001\u0001");
        Assert.False(OAuthBearerClientFirstMessage.TryParse(bytes, out _, out _));
    }
}
