using Moldau.Protocol;

namespace Moldau.Broker.Handlers;

/// <summary>How the transaction APIs answer errors older clients do not know, as Kafka's KafkaApis does.</summary>
internal static class TransactionErrors
{
    /// <summary>PRODUCER_FENCED (KIP-588) becomes INVALID_PRODUCER_EPOCH below <paramref name="firstVersion"/>, which older clients handle alike.</summary>
    public static ErrorCode ForVersion(ErrorCode error, short version, short firstVersion) =>
        error == ErrorCode.ProducerFenced && version < firstVersion ? ErrorCode.InvalidProducerEpoch : error;
}
