using Moldau.Broker.Configuration;
using Moldau.Storage;

namespace Moldau.Broker.Topics;

/// <summary>How a partition's log is set up from its topic's configs over the broker's properties.</summary>
internal static class LogOptions
{
    private static readonly IReadOnlyDictionary<string, string> None = new Dictionary<string, string>();

    /// <summary>
    /// The options of a log opened with <paramref name="topicConfigs"/>, in the state its log dir
    /// describes: the typed definitions resolve the topic's configs over server.properties
    /// (<see cref="ConfigResolver"/>); dynamic broker configs reach the log as a reconfiguration
    /// right after it opens (<see cref="PartitionLogApplier"/>).
    /// </summary>
    public static PartitionLogOptions For(BrokerOptions broker, IReadOnlyDictionary<string, string> topicConfigs, LogOpenState state) =>
        ConfigResolver.LogOptions(new ConfigLayers(topicConfigs, None, broker.Properties)) with
        {
            DirectIo = !string.Equals(broker.Properties.GetValueOrDefault("moldau.log.direct.io"), "false", StringComparison.OrdinalIgnoreCase),
            CleanShutdown = state.CleanShutdown,
            RecoveryPoint = state.RecoveryPoint,
            CleanedUpTo = state.CleanedUpTo,
        };
}
