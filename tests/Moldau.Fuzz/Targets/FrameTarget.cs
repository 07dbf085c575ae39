using System.Buffers.Binary;
using Moldau.Broker;
using Moldau.Protocol;
using Moldau.Server.Network;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// What a connection does with the bytes a client sends: cut them into frames
/// (<see cref="KafkaConnection.Cut"/>), compute the produce ordering key, then read each frame's
/// header at the version its API key and version call for and decode the body with the request
/// type of that key, as the broker's dispatch does. The input is the byte stream.
/// </summary>
internal sealed class FrameTarget : FuzzTarget
{
    private const int MaxFrameBytes = 1 << 20;
    private const int BufferLength = 64 * 1024;

    public override string Name => "frame";

    public override string Description => "frame cutting, ordering key, request header and body of each frame of a byte stream";

    public override void Run(ReadOnlyMemory<byte> input)
    {
        var rest = input;
        while (true)
        {
            var state = KafkaConnection.Cut(rest.Span, MaxFrameBytes, BufferLength, out var size);
            if (state == KafkaConnection.FrameState.Bad)
            {
                if (size is >= 0 and <= MaxFrameBytes)
                {
                    throw new FuzzFinding($"frame size {size} within 0..{MaxFrameBytes} called bad");
                }

                return; // the connection closes
            }

            if (state == KafkaConnection.FrameState.Incomplete && rest.Length >= 4 && rest.Length - 4 >= size)
            {
                throw new FuzzFinding($"frame of {size} bytes called incomplete with {rest.Length - 4} received");
            }

            // A large frame's body is received into its own array; here it is already all there or not.
            if (state == KafkaConnection.FrameState.Incomplete || rest.Length - 4 < size)
            {
                return;
            }

            var frame = rest.Slice(4, size);
            Dispatch(frame);
            rest = rest[(4 + size)..];
        }
    }

    /// <summary>Reads a frame as <c>KafkaBroker.Dispatch</c> does, up to the handler.</summary>
    public static void Dispatch(ReadOnlyMemory<byte> frame)
    {
        ProduceOrdering.Key(frame);
        if (!RequestHeader.TryPeek(frame.Span, out var apiKey, out var apiVersion, out _))
        {
            return;
        }

        var reader = new KafkaReader(frame);
        var header = new RequestHeader();
        header.Read(ref reader, RequestHeader.VersionFor(apiKey, apiVersion));
        if (RequestTypes.Find(apiKey) is { } type && apiVersion >= type.LowestVersion && apiVersion <= type.HighestVersion)
        {
            type.Create().Read(ref reader, apiVersion);
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (var type in RequestTypes.All.Where(t => t.ApiKey is 0 or 1 or 3 or 18 or 8 or 11))
        {
            var body = SeedMessages.Encode(type, type.HighestVersion);
            if (body is null)
            {
                continue;
            }

            var header = new RequestHeader { ApiKey = type.ApiKey, ApiVersion = type.HighestVersion, CorrelationId = 7, ClientId = "rdkafka" };
            var headerVersion = RequestHeader.VersionFor(type.ApiKey, type.HighestVersion);
            var frame = new byte[4 + header.Size(headerVersion) + body.Length];
            BinaryPrimitives.WriteInt32BigEndian(frame, frame.Length - 4);
            var writer = new KafkaWriter(frame.AsSpan(4));
            header.Write(ref writer, headerVersion);
            body.CopyTo(frame, 4 + header.Size(headerVersion));
            yield return ($"{type.Name}-v{type.HighestVersion}", frame);
        }
    }
}
