using Moldau.Protocol;

namespace Moldau.Broker;

/// <summary>Encodes a response frame: size prefix, response header, body, in one buffer.</summary>
internal static class ResponseWriter
{
    /// <summary>
    /// <code>
    /// +-----------+----------------+----------------+--------------------+
    /// | size      | correlation_id | [tagged fields]| body               |
    /// | int32     | int32          | header v1 only | message at version |
    /// +-----------+----------------+----------------+--------------------+
    /// </code>
    /// </summary>
    public static DispatchResult Encode(int correlationId, short headerVersion, IKafkaMessage body, short version)
    {
        var headerSize = ResponseHeader.Size(headerVersion);
        var bodySize = body.Size(version);
        var total = 4 + headerSize + bodySize;
        // Rented: large fetch responses would otherwise churn the large-object heap.
        var frame = System.Buffers.ArrayPool<byte>.Shared.Rent(total);
        var writer = new KafkaWriter(frame.AsSpan(0, total));
        writer.WriteInt32(total - 4);
        ResponseHeader.Write(ref writer, correlationId, headerVersion);
        body.Write(ref writer, version);
        if (writer.Position != total)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(frame);
            throw new InvalidOperationException($"{body.GetType().Name} v{version}: sized {total}, wrote {writer.Position}");
        }

        return DispatchResult.SendPooled(frame, total);
    }
}
