using System.Text;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>ApiVersions through the dispatcher, the first request every client sends (KIP-511 for versions it doesn't know).</summary>
public sealed class ApiVersionsDispatchTests : IAsyncLifetime
{
    private BrokerHarness _broker = null!;

    public Task InitializeAsync()
    {
        _broker = BrokerHarness.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    private static void AssertServedTable(ApiVersionsResponse response)
    {
        var byKey = response.ApiKeys.ToDictionary(a => (ApiKey)a.ApiKey);
        Assert.Equal(byKey.Count, response.ApiKeys.Count);
        Assert.All(response.ApiKeys, a => Assert.InRange(a.MinVersion, ApiSpecs.Find(a.ApiKey)!.LowestVersion, a.MaxVersion));

        // What every client needs first, at the versions Kafka 4 serves them.
        Assert.Equal((0, 11), (byKey[ApiKey.Produce].MinVersion, byKey[ApiKey.Produce].MaxVersion));
        Assert.Equal((4, 17), (byKey[ApiKey.Fetch].MinVersion, byKey[ApiKey.Fetch].MaxVersion));
        Assert.Equal((0, 12), (byKey[ApiKey.Metadata].MinVersion, byKey[ApiKey.Metadata].MaxVersion));
        Assert.Equal((0, 4), (byKey[ApiKey.ApiVersions].MinVersion, byKey[ApiKey.ApiVersions].MaxVersion));
        Assert.Equal(response.ApiKeys.Select(a => a.ApiKey).Order(), response.ApiKeys.Select(a => a.ApiKey));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(4)]
    [Covers(ApiKey.ApiVersions)]
    public async Task ApiVersionsListsTheServedApisInKeyOrder(short version)
    {
        var response = await _broker.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, version, new ApiVersionsRequest { ClientSoftwareName = "moldau-tests", ClientSoftwareVersion = "1.0.0" });
        Assert.Equal((short)0, response.ErrorCode);
        AssertServedTable(response);
    }

    [Theory]
    [InlineData(5)]
    [InlineData(99)]
    [Covers(ApiKey.ApiVersions)]
    public async Task AnUnknownVersionGetsUnsupportedVersionInAVersionZeroBody(short version)
    {
        // A newer client encodes its request flexibly (header v2, compact strings): the broker
        // reads only the header's first fields and answers at v0 so any client can parse it.
        var body = new List<byte> { 0, 18, (byte)(version >> 8), (byte)version, 0, 0, 0x30, 0x39, 0, 4 };
        body.AddRange(Encoding.UTF8.GetBytes("test"));
        body.AddRange([0, 4, (byte)'n', (byte)'e', (byte)'w', 2, (byte)'9', 0]);
        var raw = await _broker.SendRawAsync([.. body]);
        Assert.False(raw.Closed, raw.CloseReason);
        var response = BrokerHarness.Decode<ApiVersionsResponse>(raw.Frame!, 12345, headerVersion: 0, version: 0);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, response.ErrorCode);
        AssertServedTable(response);
    }

    [Fact]
    [Covers(ApiKey.ApiVersions)]
    public async Task AVersionOutsideTheAdvertisedRangeClosesTheConnection()
    {
        // Fetch v3 is below the advertised range: a client that sends it ignored ApiVersions.
        var fetch = BrokerHarness.Frame(ApiKey.Fetch, 3, 1, new FetchRequest { MaxBytes = 100 });
        Assert.True((await _broker.SendRawAsync(fetch)).Closed);
    }
}
