using Moldau.Protocol;

namespace Moldau.Broker.Handlers;

/// <summary>
/// A SASL response that may end its connection after it is sent: Kafka answers a failed or
/// out-of-order exchange (SASL_AUTHENTICATION_FAILED, UNSUPPORTED_SASL_MECHANISM,
/// ILLEGAL_SASL_STATE) and then closes.
/// </summary>
/// <typeparam name="T">The generated response.</typeparam>
internal sealed class SaslReply<T>(T body, string? closeAfter = null) : IKafkaMessage, IResponseDirective
    where T : class, IKafkaMessage
{
    /// <summary>The response.</summary>
    public T Response { get; } = body;

    /// <inheritdoc/>
    public bool Silent => false;

    /// <inheritdoc/>
    public string? CloseReason => null;

    /// <inheritdoc/>
    public string? CloseAfterReason { get; } = closeAfter;

    /// <inheritdoc/>
    public IKafkaMessage? Body => Response;

    /// <inheritdoc/>
    public void Read(ref KafkaReader reader, short version) => Response.Read(ref reader, version);

    /// <inheritdoc/>
    public void Write(ref KafkaWriter writer, short version) => Response.Write(ref writer, version);

    /// <inheritdoc/>
    public int Size(short version) => Response.Size(version);
}
