using System.Buffers.Binary;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.IntegrationTests;

[Collection(BrokerCollection.Name)]
public sealed class ApiVersionsTests(SharedBroker shared)
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public async Task EveryVersionAnswersWithAHeaderV0AndTheServedApis(short version)
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var request = new ApiVersionsRequest { ClientSoftwareName = "moldau-test", ClientSoftwareVersion = "1.0" };
        await client.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, version, 42, request));
        var frame = (await client.ReadFrameAsync())!;

        // Header v0: the correlation id and nothing else, even for v3+ (flexible) bodies.
        Assert.Equal(42, BinaryPrimitives.ReadInt32BigEndian(frame));
        var response = KafkaMessageExtensions.Decode<ApiVersionsResponse>(frame.AsMemory(4), version);
        Assert.Equal(0, response.ErrorCode);
        var apis = response.ApiKeys.ToDictionary(a => (ApiKey)a.ApiKey);
        Assert.Equal((0, 4), (apis[ApiKey.ApiVersions].MinVersion, apis[ApiKey.ApiVersions].MaxVersion));
        Assert.Equal((4, 17), (apis[ApiKey.Fetch].MinVersion, apis[ApiKey.Fetch].MaxVersion));
        Assert.Equal((0, 11), (apis[ApiKey.Produce].MinVersion, apis[ApiKey.Produce].MaxVersion));
        Assert.Equal((0, 0), (apis[ApiKey.DescribeTopicPartitions].MinVersion, apis[ApiKey.DescribeTopicPartitions].MaxVersion));
        Assert.True(apis.ContainsKey(ApiKey.Metadata));
        Assert.True(apis.ContainsKey(ApiKey.ListOffsets));
    }

    [Theory]
    [InlineData(5)]
    [InlineData(127)]
    public async Task AnUnknownVersionGetsUnsupportedVersionInAV0BodyAndTheConnectionStays(short version)
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);

        // A client newer than the broker: header v2 and a body this broker can't know.
        var frame = KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, 4, 7, new ApiVersionsRequest { ClientSoftwareName = "future" });
        BinaryPrimitives.WriteInt16BigEndian(frame.AsSpan(6), version);
        await client.SendRawAsync(frame);
        var answer = (await client.ReadFrameAsync())!;
        Assert.Equal(7, BinaryPrimitives.ReadInt32BigEndian(answer));
        var response = KafkaMessageExtensions.Decode<ApiVersionsResponse>(answer.AsMemory(4), 0);
        Assert.Equal((short)ErrorCode.UnsupportedVersion, response.ErrorCode);
        var api = response.ApiKeys.Single(a => a.ApiKey == (short)ApiKey.ApiVersions);
        Assert.Equal(4, api.MaxVersion);

        // The client retries lower on the same connection.
        var retry = await client.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest { ClientSoftwareName = "future", ClientSoftwareVersion = "1" });
        Assert.Equal(0, retry.ErrorCode);
    }

    [Fact]
    public async Task ManyRequestsOnOneConnectionAreAnsweredInOrder()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var batch = new List<byte>();
        for (var i = 0; i < 50; i++)
        {
            batch.AddRange(KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, (short)(i % 5), 1000 + i, new ApiVersionsRequest()));
        }

        await client.SendRawAsync(batch.ToArray());
        for (var i = 0; i < 50; i++)
        {
            var frame = (await client.ReadFrameAsync())!;
            Assert.Equal(1000 + i, BinaryPrimitives.ReadInt32BigEndian(frame));
        }
    }

    [Fact]
    public async Task SeveralConnectionsAreServedAtOnce()
    {
        var clients = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => KafkaTestClient.ConnectAsync(shared.Broker.Port)));
        try
        {
            // Send on all first, then read in reverse order: no connection waits for another.
            for (var i = 0; i < clients.Length; i++)
            {
                await clients[i].SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, 3, i, new ApiVersionsRequest()));
            }

            for (var i = clients.Length - 1; i >= 0; i--)
            {
                var frame = (await clients[i].ReadFrameAsync())!;
                Assert.Equal(i, BinaryPrimitives.ReadInt32BigEndian(frame));
            }
        }
        finally
        {
            foreach (var c in clients)
            {
                await c.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task AnApiTheBrokerDoesNotServeClosesOnlyThatConnection()
    {
        await using var other = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);

        // DescribeDelegationToken (41) is not served; Fetch v3 is below the served range.
        await client.SendRawAsync(KafkaTestClient.EncodeRequest((ApiKey)41, 1, 1, new DescribeDelegationTokenRequest()));
        Assert.True(await client.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));

        await using var old = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        await old.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.Fetch, 3, 1, new FetchRequest()));
        Assert.True(await old.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));

        var response = await other.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest());
        Assert.Equal(0, response.ErrorCode);
    }

    [Fact]
    public async Task GarbageAndOversizedFramesCloseTheConnection()
    {
        await using var garbage = await KafkaTestClient.ConnectAsync(shared.Broker.Port);

        // A Metadata v12 request whose topic array claims more elements than the frame holds.
        byte[] body = [0, 3, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0x7F];
        var frame = new byte[4 + body.Length];
        BinaryPrimitives.WriteInt32BigEndian(frame, body.Length);
        body.CopyTo(frame, 4);
        await garbage.SendRawAsync(frame);
        Assert.True(await garbage.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));

        await using var huge = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var size = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(size, 104857601);
        await huge.SendRawAsync(size);
        Assert.True(await huge.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));

        await using var negative = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        BinaryPrimitives.WriteInt32BigEndian(size, -5);
        await negative.SendRawAsync(size);
        Assert.True(await negative.IsClosedByBrokerAsync(TimeSpan.FromSeconds(10)));

        await using var fine = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        Assert.Equal(0, (await fine.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 0, new ApiVersionsRequest())).ErrorCode);
    }
}
