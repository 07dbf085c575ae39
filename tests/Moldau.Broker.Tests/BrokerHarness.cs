using System.Buffers;
using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>
/// The one place the in-memory tests reach the broker's entry point: it starts a broker on a
/// temporary directory, encodes a request frame (header and body, as a client would), hands it to
/// the dispatcher and decodes the response with the generated classes. When the entry point or the
/// connection type changes, only this file changes.
/// </summary>
internal sealed class BrokerHarness : IAsyncDisposable
{
    private readonly string _dir;
    private int _correlation;

    private BrokerHarness(string dir, KafkaBroker broker)
    {
        _dir = dir;
        Broker = broker;
    }

    /// <summary>The broker under test.</summary>
    public KafkaBroker Broker { get; }

    /// <summary>Its only log dir.</summary>
    public string LogDir => _dir;

    /// <summary>
    /// A started broker on a fresh directory: advertised as broker.test:9092, groups complete their
    /// first join at once, __consumer_offsets and __transaction_state have one partition each (only to keep tests fast).
    /// </summary>
    public static BrokerHarness Start(Action<BrokerOptions>? configure = null, TimeProvider? time = null)
    {
        var dir = Path.Combine(Path.GetTempPath(), "moldau-dispatch-" + Guid.NewGuid().ToString("N")[..10]);
        var options = new BrokerOptions
        {
            LogDirs = [dir],
            NumPartitions = 2,
            AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)],
            GroupInitialRebalanceDelayMs = 0,
            OffsetsTopicNumPartitions = 1,
            Properties = new Dictionary<string, string> { ["transaction.state.log.num.partitions"] = "1" },
        };
        configure?.Invoke(options);
        var broker = new KafkaBroker(options, NullLoggerFactory.Instance, time ?? TimeProvider.System);
        broker.Start();
        return new BrokerHarness(dir, broker);
    }

    /// <summary>Sends <paramref name="request"/> at <paramref name="version"/> and decodes the response.</summary>
    public Task<T> SendAsync<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => SendAsync<T>(Broker, Interlocked.Increment(ref _correlation), key, version, request);

    /// <summary>Sends <paramref name="request"/> on a connection of its own (its principal and peer), and decodes the response.</summary>
    public async Task<T> SendAsync<T>(ConnectionSession session, ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new()
    {
        var correlation = Interlocked.Increment(ref _correlation);
        var raw = await SendRawAsync(Broker, Frame(key, version, correlation, request), session);
        Assert.False(raw.Closed, raw.CloseReason);
        Assert.NotNull(raw.Frame);
        var spec = ApiSpecs.Find((short)key)!;
        return Decode<T>(raw.Frame, correlation, spec.ResponseHeaderVersion(version), version);
    }

    /// <summary>Sends a frame as it is (header and body, no size prefix).</summary>
    public Task<RawResponse> SendRawAsync(byte[] frame) => SendRawAsync(Broker, frame);

    /// <summary>A request frame (header and body, without the size prefix), as a client encodes it.</summary>
    public static byte[] Frame(ApiKey key, short version, int correlation, IKafkaMessage request, string? clientId = "test")
    {
        var spec = ApiSpecs.Find((short)key)!;
        var header = new RequestHeader { ApiKey = (short)key, ApiVersion = version, CorrelationId = correlation, ClientId = clientId };
        var headerVersion = spec.RequestHeaderVersion(version);
        var frame = new byte[header.Size(headerVersion) + request.Size(version)];
        var writer = new KafkaWriter(frame);
        header.Write(ref writer, headerVersion);
        request.Write(ref writer, version);
        return frame;
    }

    /// <summary>
    /// One request through the dispatcher of <paramref name="broker"/>: the response must be one
    /// whole frame for this correlation id, with the header version the spec gives, and its body
    /// must decode to the last byte.
    /// </summary>
    public static async Task<T> SendAsync<T>(KafkaBroker broker, int correlation, ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new()
    {
        var raw = await SendRawAsync(broker, Frame(key, version, correlation, request));
        Assert.False(raw.Closed, raw.CloseReason);
        Assert.NotNull(raw.Frame);
        var spec = ApiSpecs.Find((short)key)!;
        return Decode<T>(raw.Frame, correlation, spec.ResponseHeaderVersion(version), version);
    }

    /// <summary>Decodes a response frame (with its size prefix), checking size, correlation id and that nothing is left over.</summary>
    public static T Decode<T>(byte[] frame, int correlation, short headerVersion, short version)
        where T : IKafkaMessage, new()
    {
        var response = new T();
        DecodeInto(response, frame, correlation, headerVersion, version);
        return response;
    }

    /// <summary>As <see cref="Decode{T}"/>, into <paramref name="response"/>.</summary>
    public static void DecodeInto(IKafkaMessage response, byte[] frame, int correlation, short headerVersion, short version)
    {
        Assert.Equal(frame.Length - 4, BinaryPrimitives.ReadInt32BigEndian(frame));
        var reader = new KafkaReader(frame.AsMemory(4));
        Assert.Equal(correlation, ResponseHeader.Read(ref reader, headerVersion));
        response.Read(ref reader, version);
        Assert.Equal(0, reader.Remaining);
    }

    /// <summary>A frame through the dispatcher of <paramref name="broker"/>, as it comes back: closed, or a response frame (copied out).</summary>
    public static async Task<RawResponse> SendRawAsync(KafkaBroker broker, byte[] frame, ConnectionSession? session = null)
    {
        var result = await broker.Dispatch(frame, session ?? new ConnectionSession(1, null, "PLAINTEXT"), CancellationToken.None);
        if (result.Close)
        {
            return new RawResponse(true, result.CloseReason, null);
        }

        var copy = result.Response?.AsSpan(0, result.Length).ToArray();
        if (result.Pooled && result.Response is not null)
        {
            ArrayPool<byte>.Shared.Return(result.Response);
        }

        return new RawResponse(false, null, copy);
    }

    /// <summary>Stops the broker and removes its directory.</summary>
    public async ValueTask DisposeAsync()
    {
        await Broker.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>What the dispatcher did with a frame.</summary>
    /// <param name="Closed">The connection is to be closed.</param>
    /// <param name="CloseReason">Why, when closed.</param>
    /// <param name="Frame">The response frame with its size prefix, or null for none (acks=0).</param>
    internal sealed record RawResponse(bool Closed, string? CloseReason, byte[]? Frame);
}
