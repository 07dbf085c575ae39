using System.Globalization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>The checks and the write shared by both config-altering APIs.</summary>
internal static class ConfigChanges
{
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
        catch (ArgumentException e)
        {
            return (ErrorCode.InvalidRequest, e.Message);
        }

        if (topic is not null && changes.Select(c => ConfigDefaults.ValidateTopic(c.Name, c.Value)).FirstOrDefault(m => m is not null) is { } invalid)
        {
            return (ErrorCode.InvalidConfig, invalid);
        }

        if (!validateOnly)
        {
            state.Topics.SetConfigs(topic, changes);
        }

        return (ErrorCode.None, null);
    }
}
