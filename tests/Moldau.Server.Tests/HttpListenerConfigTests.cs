using Moldau.Server.Configuration;
using Moldau.Server.Http;

namespace Moldau.Server.Tests;

/// <summary>moldau.http.listeners: off unless set, http://host:port items, clear refusals.</summary>
public sealed class HttpListenerConfigTests
{
    [Theory]
    [InlineData(null)]
    [InlineData("")]
    [InlineData("none")]
    public void UnsetEmptyOrNoneServesNoHttp(string? value) => Assert.Empty(HttpListenerConfig.Parse(value));

    [Fact]
    public void ListsAddresses()
    {
        var parsed = HttpListenerConfig.Parse("http://127.0.0.1:9644, http://0.0.0.0:9645/ ,http://[::1]:9646");
        Assert.Equal([new("127.0.0.1", 9644), new("0.0.0.0", 9645), new("[::1]", 9646)], parsed);
        Assert.Equal(System.Net.IPAddress.Any, parsed[1].EndPoint.Address);
        Assert.Equal(System.Net.IPAddress.IPv6Loopback, parsed[2].EndPoint.Address);
    }

    [Theory]
    [InlineData("https://127.0.0.1:9644")]
    [InlineData("127.0.0.1:9644")]
    [InlineData("http://127.0.0.1")]
    [InlineData("http://127.0.0.1:99999")]
    public void RefusesWhatItCannotServe(string value) =>
        Assert.Contains("moldau.http.listeners", Assert.Throws<ConfigException>(() => HttpListenerConfig.Parse(value)).Message, StringComparison.Ordinal);

    [Fact]
    public void IsAKnownKey() =>
        Assert.DoesNotContain("moldau.http.listeners", ServerConfig.From(new Dictionary<string, string> { ["moldau.http.listeners"] = "http://127.0.0.1:9644" }).UnknownKeys);
}
