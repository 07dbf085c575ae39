namespace Moldau.Protocol;

/// <summary>
/// A message or struct of Kafka's protocol that reads, sizes and writes itself at any of its
/// versions. Implemented by the generated types in <c>Generated/</c>.
/// </summary>
public interface IKafkaMessage
{
    /// <summary>Reads the fields present in <paramref name="version"/>.</summary>
    void Read(ref KafkaReader reader, short version);

    /// <summary>Writes the fields present in <paramref name="version"/>.</summary>
    void Write(ref KafkaWriter writer, short version);

    /// <summary>Bytes that <see cref="Write"/> will produce at <paramref name="version"/>.</summary>
    int Size(short version);
}

/// <summary>Helpers over <see cref="IKafkaMessage"/>.</summary>
public static class KafkaMessageExtensions
{
    /// <summary>Encodes the message at <paramref name="version"/> into a new array.</summary>
    public static byte[] ToBytes(this IKafkaMessage message, short version)
    {
        var bytes = new byte[message.Size(version)];
        var writer = new KafkaWriter(bytes);
        message.Write(ref writer, version);
        if (writer.Position != bytes.Length)
        {
            throw new InvalidOperationException($"{message.GetType().Name} v{version}: sized {bytes.Length}, wrote {writer.Position}");
        }

        return bytes;
    }

    /// <summary>Decodes a message of type <typeparamref name="T"/> that fills all of <paramref name="bytes"/>.</summary>
    public static T Decode<T>(ReadOnlyMemory<byte> bytes, short version)
        where T : IKafkaMessage, new()
    {
        var reader = new KafkaReader(bytes);
        var message = new T();
        message.Read(ref reader, version);
        if (reader.Remaining != 0)
        {
            throw new KafkaProtocolException($"{typeof(T).Name} v{version}: {reader.Remaining} bytes left over");
        }

        return message;
    }
}
