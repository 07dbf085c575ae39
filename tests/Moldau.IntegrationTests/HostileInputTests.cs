using System.Buffers.Binary;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.IntegrationTests;

/// <summary>Garbage after a valid header, for every served API and version: an answer or a closed connection, never a crash.</summary>
[Collection(BrokerCollection.Name)]
public sealed class HostileInputTests(SharedBroker shared)
{
    [Fact]
    public async Task RandomBodiesNeverBringTheBrokerDown()
    {
        var random = new Random(42);
        var versions = await (await KafkaTestClient.ConnectAsync(shared.Broker.Port)).SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest());
        var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var sent = 0;
        foreach (var api in versions.ApiKeys)
        {
            for (var version = api.MinVersion; version <= api.MaxVersion; version++)
            {
                for (var attempt = 0; attempt < 3; attempt++)
                {
                    // A valid header for the API and version, then 0-64 random bytes.
                    var header = KafkaTestClient.EncodeRequest((ApiKey)api.ApiKey, version, 1, new ApiVersionsRequest(), clientId: "fuzz");
                    var headerLength = header.Length - new ApiVersionsRequest().Size(version is >= 0 and <= 4 ? version : (short)0) - 4;
                    var body = new byte[random.Next(0, 65)];
                    random.NextBytes(body);
                    var frame = new byte[4 + Math.Max(0, headerLength) + body.Length];
                    header.AsSpan(4, Math.Max(0, headerLength)).CopyTo(frame.AsSpan(4));
                    body.CopyTo(frame, 4 + Math.Max(0, headerLength));
                    BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
                    try
                    {
                        await client.SendRawAsync(frame);
                        sent++;
                        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                        var answer = await client.ReadFrameAsync(TimeSpan.FromSeconds(5));
                        if (answer is null)
                        {
                            await client.DisposeAsync();
                            client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
                        }
                    }
                    catch (Exception e) when (e is IOException or OperationCanceledException or System.Net.Sockets.SocketException)
                    {
                        await client.DisposeAsync();
                        client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
                    }
                }
            }
        }

        await client.DisposeAsync();
        Assert.True(sent > 300);
        await using var after = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        Assert.Equal(0, (await after.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest())).ErrorCode);
        Assert.DoesNotContain("Unhandled exception", shared.Broker.Output, StringComparison.Ordinal);
    }
}
