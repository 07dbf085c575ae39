using System.Buffers.Binary;
using System.Net.Sockets;
using Moldau.Protocol;

namespace Moldau.IntegrationTests.Infrastructure;

/// <summary>
/// A raw protocol client for tests: builds requests with the generated codec, sends them over a
/// real TCP connection, and decodes the responses.
/// </summary>
public sealed class KafkaTestClient : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private int _correlationId;

    private KafkaTestClient(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>Connects to 127.0.0.1:<paramref name="port"/>.</summary>
    public static async Task<KafkaTestClient> ConnectAsync(int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync("127.0.0.1", port);
        return new KafkaTestClient(tcp);
    }

    /// <summary>Encodes a request frame (size, header, body) for <paramref name="apiKey"/> at <paramref name="version"/>.</summary>
    public static byte[] EncodeRequest(ApiKey apiKey, short version, int correlationId, IKafkaMessage body, string? clientId = "moldau-test")
    {
        var spec = ApiSpecs.Find((short)apiKey)!;
        var headerVersion = spec.RequestHeaderVersion(version);
        var header = new RequestHeader { ApiKey = (short)apiKey, ApiVersion = version, CorrelationId = correlationId, ClientId = clientId };
        var size = header.Size(headerVersion) + body.Size(version);
        var frame = new byte[4 + size];
        var writer = new KafkaWriter(frame);
        writer.WriteInt32(size);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        return frame;
    }

    /// <summary>Sends a request and reads its response.</summary>
    public async Task<TResponse> SendAsync<TResponse>(ApiKey apiKey, short version, IKafkaMessage request)
        where TResponse : IKafkaMessage, new()
    {
        var correlationId = Interlocked.Increment(ref _correlationId);
        await SendRawAsync(EncodeRequest(apiKey, version, correlationId, request));
        var frame = await ReadFrameAsync() ?? throw new IOException("connection closed before the response");
        return DecodeResponse<TResponse>(apiKey, version, correlationId, frame);
    }

    /// <summary>Decodes a response frame (without the size), checking the correlation id.</summary>
    public static TResponse DecodeResponse<TResponse>(ApiKey apiKey, short version, int correlationId, byte[] frame)
        where TResponse : IKafkaMessage, new()
    {
        var reader = new KafkaReader(frame);
        var headerVersion = ApiSpecs.Find((short)apiKey)!.ResponseHeaderVersion(version);
        var got = ResponseHeader.Read(ref reader, headerVersion);
        if (got != correlationId)
        {
            throw new InvalidDataException($"correlation id {got}, expected {correlationId}");
        }

        var response = new TResponse();
        response.Read(ref reader, version);
        if (reader.Remaining != 0)
        {
            throw new InvalidDataException($"{reader.Remaining} bytes left after {typeof(TResponse).Name} v{version}");
        }

        return response;
    }

    /// <summary>Sends raw bytes.</summary>
    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes) => await _stream.WriteAsync(bytes);

    /// <summary>Reads one response frame (without its size), or null when the broker closed the connection.</summary>
    public async Task<byte[]?> ReadFrameAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
        var size = new byte[4];
        if (!await ReadExactlyAsync(size, cts.Token))
        {
            return null;
        }

        var frame = new byte[BinaryPrimitives.ReadInt32BigEndian(size)];
        return await ReadExactlyAsync(frame, cts.Token) ? frame : throw new IOException("connection closed mid-frame");
    }

    /// <summary>True when the broker has closed the connection (reads end of stream) within the timeout.</summary>
    public async Task<bool> IsClosedByBrokerAsync(TimeSpan timeout)
    {
        try
        {
            using var cts = new CancellationTokenSource(timeout);
            var buffer = new byte[1];
            return await _stream.ReadAsync(buffer, cts.Token) == 0;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    private async Task<bool> ReadExactlyAsync(byte[] buffer, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            int n;
            try
            {
                n = await _stream.ReadAsync(buffer.AsMemory(read), cancellationToken);
            }
            catch (IOException)
            {
                n = 0;
            }

            if (n == 0)
            {
                return read == 0 ? false : throw new IOException("connection closed mid-frame");
            }

            read += n;
        }

        return true;
    }

    /// <summary>Closes the connection.</summary>
    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
