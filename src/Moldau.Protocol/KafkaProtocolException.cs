namespace Moldau.Protocol;

/// <summary>Bytes that do not decode as the message they claim to be.</summary>
public sealed class KafkaProtocolException(string message) : Exception(message);
