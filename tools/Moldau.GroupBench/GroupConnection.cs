using System.Buffers.Binary;
using System.Net.Sockets;
using Moldau.Protocol;

namespace Moldau.GroupBench;

/// <summary>One member's TCP connection: one request at a time, encoded with the project's codec.</summary>
internal sealed class GroupConnection : IAsyncDisposable
{
    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private int _correlationId;

    private GroupConnection(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    public static async Task<GroupConnection> ConnectAsync(string host, int port)
    {
        var tcp = new TcpClient { NoDelay = true };
        await tcp.ConnectAsync(host, port);
        return new GroupConnection(tcp);
    }

    /// <summary>Sends <paramref name="request"/> and reads its response.</summary>
    public async Task<TResponse> SendAsync<TResponse>(ApiKey apiKey, short version, IKafkaMessage request, CancellationToken cancellationToken = default)
        where TResponse : IKafkaMessage, new()
    {
        var correlationId = ++_correlationId;
        var spec = ApiSpecs.Find((short)apiKey)!;
        var header = new RequestHeader { ApiKey = (short)apiKey, ApiVersion = version, CorrelationId = correlationId, ClientId = "moldau-groupbench" };
        var requestHeaderVersion = spec.RequestHeaderVersion(version);
        var size = header.Size(requestHeaderVersion) + request.Size(version);
        var frame = new byte[4 + size];
        var writer = new KafkaWriter(frame);
        writer.WriteInt32(size);
        header.Write(ref writer, requestHeaderVersion);
        request.Write(ref writer, version);
        await _stream.WriteAsync(frame, cancellationToken);

        var sizeBytes = new byte[4];
        await _stream.ReadExactlyAsync(sizeBytes, cancellationToken);
        var body = new byte[BinaryPrimitives.ReadInt32BigEndian(sizeBytes)];
        await _stream.ReadExactlyAsync(body, cancellationToken);
        return Decode<TResponse>(spec.ResponseHeaderVersion(version), correlationId, version, body);
    }

    private static TResponse Decode<TResponse>(short headerVersion, int correlationId, short version, byte[] body)
        where TResponse : IKafkaMessage, new()
    {
        var reader = new KafkaReader(body);
        var got = ResponseHeader.Read(ref reader, headerVersion);
        if (got != correlationId)
        {
            throw new InvalidDataException($"correlation id {got}, expected {correlationId}");
        }

        var response = new TResponse();
        response.Read(ref reader, version);
        return response;
    }

    public ValueTask DisposeAsync()
    {
        _tcp.Dispose();
        return ValueTask.CompletedTask;
    }
}
