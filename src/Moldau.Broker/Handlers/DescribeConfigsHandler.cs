using System.Globalization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeConfigs for topics (2) and this broker (4): overrides, broker settings, defaults, with their sources.</summary>
internal sealed class DescribeConfigsHandler(BrokerState state) : IApiHandler<DescribeConfigsRequest, DescribeConfigsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeConfigsResponse> HandleAsync(RequestContext context, DescribeConfigsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(request));

    /// <inheritdoc/>
    public DescribeConfigsResponse ErrorResponse(RequestContext context, DescribeConfigsRequest request, ErrorCode error) =>
        new() { Results = [.. request.Resources.Select(r => new DescribeConfigsResponse.DescribeConfigsResult { ErrorCode = (short)error, ResourceType = r.ResourceType, ResourceName = r.ResourceName })] };

    private const sbyte DynamicTopic = 1;
    private const sbyte DynamicBroker = 2;
    private const sbyte StaticBroker = 4;
    private const sbyte Default = 5;

    public DescribeConfigsResponse Handle(DescribeConfigsRequest request)
    {
        var response = new DescribeConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null };
            response.Results.Add(result);
            List<(string Name, string Value, sbyte Source, ConfigDefaults.ConfigType Type)>? entries = resource.ResourceType switch
            {
                TopicRegistry.TopicResource => TopicConfigs(resource.ResourceName, result),
                TopicRegistry.BrokerResource => BrokerConfigs(resource.ResourceName, result),
                _ => null,
            };
            if (entries is null)
            {
                if (result.ErrorCode == 0)
                {
                    result.ErrorCode = (short)ErrorCode.InvalidRequest;
                    result.ErrorMessage = $"Unsupported resource type {resource.ResourceType}";
                }

                continue;
            }

            foreach (var e in entries.Where(e => resource.ConfigurationKeys is null || resource.ConfigurationKeys.Contains(e.Name)).OrderBy(e => e.Name, StringComparer.Ordinal))
            {
                result.Configs.Add(new DescribeConfigsResponse.DescribeConfigsResourceResult
                {
                    Name = e.Name,
                    Value = e.Value,
                    ReadOnly = resource.ResourceType == TopicRegistry.BrokerResource && e.Source == StaticBroker,
                    IsDefault = e.Source == Default,
                    ConfigSource = e.Source,
                    ConfigType = (sbyte)e.Type,
                    Documentation = null,
                });
            }
        }

        return response;
    }

    private List<(string, string, sbyte, ConfigDefaults.ConfigType)>? TopicConfigs(string name, DescribeConfigsResponse.DescribeConfigsResult result)
    {
        var topic = state.Topics.Find(name);
        if (topic is null)
        {
            result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
            result.ErrorMessage = $"Topic '{name}' does not exist.";
            return null;
        }

        var list = new List<(string, string, sbyte, ConfigDefaults.ConfigType)>();
        foreach (var (key, (defaultValue, brokerKey, type)) in ConfigDefaults.Topic)
        {
            if (topic.Configs.TryGetValue(key, out var v))
            {
                list.Add((key, v, DynamicTopic, type));
            }
            else if (brokerKey is not null && state.Topics.BrokerConfigs.TryGetValue(brokerKey, out var dyn))
            {
                list.Add((key, dyn, DynamicBroker, type));
            }
            else if (brokerKey is not null && state.Options.Properties.TryGetValue(brokerKey, out var stat))
            {
                list.Add((key, stat, StaticBroker, type));
            }
            else
            {
                list.Add((key, defaultValue, Default, type));
            }
        }

        // Configs set at creation that Moldau doesn't list above are still shown.
        foreach (var (key, value) in topic.Configs.Where(c => !ConfigDefaults.Topic.ContainsKey(c.Key)))
        {
            list.Add((key, value, DynamicTopic, ConfigDefaults.ConfigType.String));
        }

        return list;
    }

    private List<(string, string, sbyte, ConfigDefaults.ConfigType)>? BrokerConfigs(string name, DescribeConfigsResponse.DescribeConfigsResult result)
    {
        if (name.Length > 0 && name != state.Options.NodeId.ToString(CultureInfo.InvariantCulture))
        {
            result.ErrorCode = (short)ErrorCode.InvalidRequest;
            result.ErrorMessage = $"Unexpected broker id, expected {state.Options.NodeId} or empty string, but received {name}";
            return null;
        }

        var list = new List<(string, string, sbyte, ConfigDefaults.ConfigType)>();
        var keys = ConfigDefaults.Broker.Keys.Concat(state.Options.Properties.Keys).Concat(state.Topics.BrokerConfigs.Keys).Distinct(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            if (state.Topics.BrokerConfigs.TryGetValue(key, out var dyn))
            {
                list.Add((key, dyn, DynamicBroker, ConfigDefaults.ConfigType.String));
            }
            else if (state.Options.Properties.TryGetValue(key, out var stat))
            {
                list.Add((key, stat, StaticBroker, ConfigDefaults.ConfigType.String));
            }
            else
            {
                list.Add((key, ConfigDefaults.Broker[key], Default, ConfigDefaults.ConfigType.String));
            }
        }

        return list;
    }
}
