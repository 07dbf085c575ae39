namespace Moldau.Protocol;

/// <summary>
/// The header in front of every request.
/// </summary>
/// <remarks>
/// <code>
/// v1:  +---------+-------------+----------------+-----------------------------+
///      | api_key | api_version | correlation_id | client_id                   |
///      | int16   | int16       | int32          | int16 length + UTF-8, -1 null|
///      +---------+-------------+----------------+-----------------------------+
/// v2:  the same, then the tagged-field section (unsigned varint count, then tag/size/data).
///      client_id keeps its int16 length even in v2, so any broker can read it.
/// </code>
/// The version follows from the API's spec: v2 when the request version is flexible, else v1.
/// </remarks>
public sealed class RequestHeader
{
    /// <summary>The API key.</summary>
    public short ApiKey { get; set; }

    /// <summary>The API version.</summary>
    public short ApiVersion { get; set; }

    /// <summary>Echoed in the response.</summary>
    public int CorrelationId { get; set; }

    /// <summary>The client's id, or null.</summary>
    public string? ClientId { get; set; }

    /// <summary>Tagged fields of a v2 header, kept as they came.</summary>
    public List<TaggedField>? UnknownTaggedFields { get; set; }

    /// <summary>The header version for an API key and version (v1 for keys the specs don't know).</summary>
    public static short VersionFor(short apiKey, short apiVersion) =>
        ApiSpecs.Find(apiKey)?.RequestHeaderVersion(apiVersion) ?? 1;

    /// <summary>Reads just the key and version, without moving past them.</summary>
    public static bool TryPeek(ReadOnlySpan<byte> frame, out short apiKey, out short apiVersion, out int correlationId)
    {
        if (frame.Length < 8)
        {
            apiKey = apiVersion = 0;
            correlationId = 0;
            return false;
        }

        apiKey = System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(frame);
        apiVersion = System.Buffers.Binary.BinaryPrimitives.ReadInt16BigEndian(frame[2..]);
        correlationId = System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(frame[4..]);
        return true;
    }

    /// <summary>Reads a header of version <paramref name="headerVersion"/> (1 or 2).</summary>
    public void Read(ref KafkaReader reader, short headerVersion)
    {
        ApiKey = reader.ReadInt16();
        ApiVersion = reader.ReadInt16();
        CorrelationId = reader.ReadInt32();
        ClientId = headerVersion >= 1 ? reader.ReadNullableString(compact: false, ClientId) : null;
        UnknownTaggedFields = headerVersion >= 2 ? reader.ReadUnknownTaggedFields() : null;
    }

    /// <summary>Bytes of the header at <paramref name="headerVersion"/>.</summary>
    public int Size(short headerVersion)
    {
        var size = 8;
        if (headerVersion >= 1)
        {
            size += KafkaSize.NullableString(ClientId, compact: false);
        }

        if (headerVersion >= 2)
        {
            size += TaggedSize(UnknownTaggedFields);
        }

        return size;
    }

    /// <summary>Writes the header at <paramref name="headerVersion"/>.</summary>
    public void Write(ref KafkaWriter writer, short headerVersion)
    {
        writer.WriteInt16(ApiKey);
        writer.WriteInt16(ApiVersion);
        writer.WriteInt32(CorrelationId);
        if (headerVersion >= 1)
        {
            writer.WriteNullableString(ClientId, compact: false);
        }

        if (headerVersion >= 2)
        {
            WriteTagged(ref writer, UnknownTaggedFields);
        }
    }

    internal static int TaggedSize(List<TaggedField>? fields)
    {
        var size = KafkaSize.UnsignedVarInt((uint)(fields?.Count ?? 0));
        foreach (var f in fields ?? [])
        {
            size += KafkaSize.TaggedField(f.Tag, f.Data.Length);
        }

        return size;
    }

    internal static void WriteTagged(ref KafkaWriter writer, List<TaggedField>? fields)
    {
        writer.WriteUnsignedVarInt((uint)(fields?.Count ?? 0));
        foreach (var f in fields ?? [])
        {
            writer.WriteTaggedField(f.Tag, f.Data);
        }
    }
}

/// <summary>
/// The header in front of every response.
/// </summary>
/// <remarks>
/// <code>
/// v0:  +----------------+
///      | correlation_id |
///      | int32          |
///      +----------------+
/// v1:  correlation_id, then the tagged-field section (an empty one is the single byte 0x00).
/// </code>
/// v1 for flexible response versions, except ApiVersions, whose responses always use v0 so a
/// client that does not yet know the broker's versions can read it.
/// </remarks>
public static class ResponseHeader
{
    /// <summary>Bytes of a response header with no tagged fields.</summary>
    public static int Size(short headerVersion) => headerVersion >= 1 ? 5 : 4;

    /// <summary>Writes a response header with no tagged fields.</summary>
    public static void Write(ref KafkaWriter writer, int correlationId, short headerVersion)
    {
        writer.WriteInt32(correlationId);
        if (headerVersion >= 1)
        {
            writer.WriteUnsignedVarInt(0);
        }
    }

    /// <summary>Reads a response header (as a client does), returning the correlation id.</summary>
    public static int Read(ref KafkaReader reader, short headerVersion)
    {
        var correlationId = reader.ReadInt32();
        if (headerVersion >= 1)
        {
            reader.ReadUnknownTaggedFields();
        }

        return correlationId;
    }
}
