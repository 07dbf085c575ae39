using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Broker.Handlers;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

/// <summary>
/// A real broker behind a real listener, over TCP: many large produce requests pipelined on one
/// connection for one partition (dispatched by the connection's lanes) append in the order sent,
/// and a handler that throws is answered with its API's error response on a connection that stays open.
/// </summary>
public sealed class PipelineOverTcpTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-pipeline-tcp-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly CancellationTokenSource _stop = new();
    private KafkaBroker? _broker;
    private KafkaListener? _listener;
    private int _correlation;

    public Task InitializeAsync()
    {
        _broker = new KafkaBroker(
            new BrokerOptions { LogDirs = [_dir], NumPartitions = 1, AdvertisedEndpoints = [new("PLAINTEXT", "127.0.0.1", 9092)] },
            NullLoggerFactory.Instance,
            TimeProvider.System);
        _broker.Start();
        _listener = KafkaListener.Bind("PLAINTEXT", "127.0.0.1", 0, NullLogger.Instance);
        _listener.Start(_broker, new NetworkContext(new NetworkLimits(), TimeProvider.System, NullLogger.Instance), _stop.Token);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _stop.CancelAsync();
        await _listener!.DisposeAsync();
        await _broker!.DisposeAsync();
        _stop.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private async Task<Socket> ConnectAsync()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(IPAddress.Loopback, _listener!.EndPoint.Port);
        return s;
    }

    private byte[] Frame(ApiKey key, short version, IKafkaMessage body)
    {
        var spec = ApiSpecs.Find((short)key)!;
        var header = new RequestHeader { ApiKey = (short)key, ApiVersion = version, CorrelationId = ++_correlation, ClientId = "tcp-test" };
        var headerVersion = spec.RequestHeaderVersion(version);
        var size = header.Size(headerVersion) + body.Size(version);
        var frame = new byte[4 + size];
        BinaryPrimitives.WriteInt32BigEndian(frame, size);
        var writer = new KafkaWriter(frame.AsSpan(4));
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        return frame;
    }

    private static async Task<T> ReadAsync<T>(Socket socket, ApiKey key, short version, int correlation)
        where T : IKafkaMessage, new()
    {
        var sizeBytes = new byte[4];
        await ReadExactlyAsync(socket, sizeBytes);
        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(sizeBytes)];
        await ReadExactlyAsync(socket, body);
        var reader = new KafkaReader(body);
        Assert.Equal(correlation, ResponseHeader.Read(ref reader, ApiSpecs.Find((short)key)!.ResponseHeaderVersion(version)));
        var response = new T();
        response.Read(ref reader, version);
        return response;
    }

    private static async Task ReadExactlyAsync(Socket socket, byte[] buffer)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var have = 0; have < buffer.Length;)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(have), SocketFlags.None, timeout.Token);
            Assert.True(n > 0, "the broker closed the connection");
            have += n;
        }
    }

    private async Task<T> RoundTripAsync<T>(Socket socket, ApiKey key, short version, IKafkaMessage body)
        where T : IKafkaMessage, new()
    {
        await socket.SendAsync(Frame(key, version, body), SocketFlags.None);
        return await ReadAsync<T>(socket, key, version, _correlation);
    }

    [Fact]
    public async Task LargeProducesPipelinedForOnePartitionAppendInTheOrderSent()
    {
        using var socket = await ConnectAsync();
        var created = await RoundTripAsync<CreateTopicsResponse>(socket, ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = "big", NumPartitions = 1, ReplicationFactor = 1 }], TimeoutMs = 5000 });
        Assert.Equal(0, created.Topics.Single().ErrorCode);

        // 80 KiB batches: above KafkaConnection.OffloadBytes, so the lanes dispatch them.
        const int Requests = 80;
        var value = new byte[80 * 1024];
        var frames = new List<(byte[] Frame, int Correlation)>();
        for (var i = 0; i < Requests; i++)
        {
            var batch = RecordBatchBuilder.Build([new(null, value, 1_700_000_000_000 + i)]);
            var frame = Frame(ApiKey.Produce, 9, new ProduceRequest { Acks = 1, TimeoutMs = 5000, TopicData = [new() { Name = "big", PartitionData = [new() { Index = 0, Records = batch }] }] });
            frames.Add((frame, _correlation));
        }

        var sending = Task.Run(async () =>
        {
            foreach (var (frame, _) in frames)
            {
                await socket.SendAsync(frame, SocketFlags.None);
            }
        });
        for (var i = 0; i < Requests; i++)
        {
            var response = await ReadAsync<ProduceResponse>(socket, ApiKey.Produce, 9, frames[i].Correlation);
            var partition = response.Responses.Single().PartitionResponses.Single();
            Assert.Equal(0, partition.ErrorCode);
            Assert.Equal(i, partition.BaseOffset);
        }

        await sending;
    }

    [Fact]
    public async Task AHandlerThatThrowsGetsAnErrorResponseAndTheConnectionStaysOpen()
    {
        var registration = ApiRegistry.All.Single(r => r.Key == ApiKey.DescribeConfigs);
        _broker!.Pipeline.Bind(new ApiEndpoint<DescribeConfigsRequest, DescribeConfigsResponse>(registration, new ThrowingDescribeConfigs()));
        using var socket = await ConnectAsync();
        var failed = await RoundTripAsync<DescribeConfigsResponse>(socket, ApiKey.DescribeConfigs, 4, new DescribeConfigsRequest
        {
            Resources = [new() { ResourceType = 2, ResourceName = "a-topic" }, new() { ResourceType = 4, ResourceName = "1" }],
        });
        Assert.Equal(["a-topic", "1"], failed.Results.Select(r => r.ResourceName));
        Assert.All(failed.Results, r => Assert.Equal((short)ErrorCode.UnknownServerError, r.ErrorCode));

        var versions = await RoundTripAsync<ApiVersionsResponse>(socket, ApiKey.ApiVersions, 3, new ApiVersionsRequest { ClientSoftwareName = "tcp-test", ClientSoftwareVersion = "1" });
        Assert.Equal(0, versions.ErrorCode);
        var metadata = await RoundTripAsync<MetadataResponse>(socket, ApiKey.Metadata, 12, new MetadataRequest());
        Assert.Single(metadata.Brokers);
    }

    private sealed class ThrowingDescribeConfigs : IApiHandler<DescribeConfigsRequest, DescribeConfigsResponse>
    {
        public ValueTask<DescribeConfigsResponse> HandleAsync(RequestContext context, DescribeConfigsRequest request, CancellationToken cancellationToken) =>
            throw new InvalidOperationException("a bug in a handler");

        public DescribeConfigsResponse ErrorResponse(RequestContext context, DescribeConfigsRequest request, ErrorCode error) =>
            new DescribeConfigsHandler(null!).ErrorResponse(context, request, error);
    }
}
