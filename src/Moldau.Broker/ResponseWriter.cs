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
        var frame = new byte[total];
        var writer = new KafkaWriter(frame);
        writer.WriteInt32(total - 4);
        ResponseHeader.Write(ref writer, correlationId, headerVersion);
        body.Write(ref writer, version);
        if (writer.Position != total)
        {
            throw new InvalidOperationException($"{body.GetType().Name} v{version}: sized {total}, wrote {writer.Position}");
        }

        return DispatchResult.Send(frame, total);
    }
}
