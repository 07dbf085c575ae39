namespace Moldau.Protocol;

/// <summary>Bytes that do not decode as the message they claim to be.</summary>
public class KafkaProtocolException(string message) : Exception(message);
