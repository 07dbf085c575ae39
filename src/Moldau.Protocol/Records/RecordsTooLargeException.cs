namespace Moldau.Protocol.Records;

/// <summary>
/// A compressed batch that inflates past the limit (or whose codec demands a larger window than
/// allowed): answered MESSAGE_TOO_LARGE, which producers meet by splitting the batch.
/// </summary>
public sealed class RecordsTooLargeException(string message) : KafkaProtocolException(message);
