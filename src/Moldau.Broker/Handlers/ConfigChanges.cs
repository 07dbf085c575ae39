using System.Globalization;
using Moldau.Broker.Configuration;
using Moldau.Broker.Topics;
using Moldau.Protocol;

namespace Moldau.Broker.Handlers;

/// <summary>A config change refused as INVALID_CONFIG (40), with Kafka's message.</summary>
internal sealed class InvalidConfigException(string message) : Exception(message);

/// <summary>
/// The checks and the write shared by both config-altering APIs: every key and value goes through
/// its definition (<see cref="TopicConfigDefinitions"/>, <see cref="BrokerConfigDefinitions"/>),
/// then the changes are recorded as ConfigRecords and reach the open logs.
/// </summary>
internal static class ConfigChanges
{
    /// <summary>
    /// Plans the changes of one resource from its current dynamic configs with
    /// <paramref name="plan"/> (which may throw <see cref="InvalidConfigException"/> or
    /// <see cref="ArgumentException"/>), checks them and, unless <paramref name="validateOnly"/>,
    /// applies them.
    /// </summary>
    public static (ErrorCode, string?) Apply(BrokerState state, sbyte resourceType, string resourceName, Func<IReadOnlyDictionary<string, string>, List<(string Name, string? Value)>> plan, bool validateOnly)
    {
        TopicInfo? topic = null;
        IReadOnlyDictionary<string, string> current;
        switch (resourceType)
        {
            case TopicRegistry.TopicResource:
                topic = state.Topics.Find(resourceName);
                if (topic is null)
                {
                    return (ErrorCode.UnknownTopicOrPartition, $"Topic '{resourceName}' does not exist.");
                }

                current = topic.Configs;
                break;
            case TopicRegistry.BrokerResource:
                if (resourceName.Length > 0 && resourceName != state.Options.NodeId.ToString(CultureInfo.InvariantCulture))
                {
                    return (ErrorCode.InvalidRequest, $"Unexpected broker id {resourceName}");
                }

                current = state.Topics.BrokerConfigs;
                break;
            default:
                return (ErrorCode.InvalidRequest, $"Unsupported resource type {resourceType}");
        }

        List<(string Name, string? Value)> changes;
        try
        {
            changes = plan(current);
        }
        catch (InvalidConfigException e)
        {
            return (ErrorCode.InvalidConfig, e.Message);
        }
        catch (ArgumentException e)
        {
            return (ErrorCode.InvalidRequest, e.Message);
        }

        if (changes.GroupBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } repeated)
        {
            return (ErrorCode.InvalidRequest, $"Error due to duplicate config keys: {repeated.Key}");
        }

        foreach (var (name, value) in changes)
        {
            if (value is null && current.ContainsKey(name))
            {
                continue; // removing what is stored is always allowed, a key since unknown included
            }

            if ((topic is not null ? TopicProblem(name, value) : BrokerProblem(name, value)) is { } problem)
            {
                return (ErrorCode.InvalidConfig, problem);
            }
        }

        // Checks across keys, on what would be in force after the change.
        var after = new Dictionary<string, string>(current, StringComparer.Ordinal);
        foreach (var (name, value) in changes)
        {
            if (value is null)
            {
                after.Remove(name);
            }
            else
            {
                after[name] = value;
            }
        }

        var layers = topic is not null
            ? state.Topics.ConfigLayersOf(topic) with { Topic = after }
            : state.Topics.ConfigLayersOf(null) with { DynamicBroker = after };
        if (ConfigResolver.Conflict(layers) is { } conflict)
        {
            return (ErrorCode.InvalidConfig, conflict);
        }

        if (!validateOnly)
        {
            state.Topics.SetConfigs(topic, changes);
        }

        return (ErrorCode.None, null);
    }

    private static string? TopicProblem(string name, string? value) => TopicConfigDefinitions.Validate(name, value);

    // Only the keys that supply topic defaults change at run time (they reach the open logs); the
    // rest are read at start-up, and a key Moldau doesn't know would be stored and ignored.
    private static string? BrokerProblem(string name, string? value) =>
        BrokerConfigDefinitions.Find(name) is not { } definition ? $"Unknown broker config name: {name}"
        : !definition.Dynamic ? $"Cannot update these configs dynamically: {name} (read-only: set it in server.properties)"
        : value is null ? null
        : definition.Validate(value);
}
