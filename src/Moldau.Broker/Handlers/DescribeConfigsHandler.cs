using System.Globalization;
using Moldau.Broker.Authorization;
using Moldau.Broker.Configuration;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DescribeConfigs for topics (2) and this broker (4): every key of the definitions with the value
/// in force and its source (Kafka's precedence, <see cref="ConfigResolver"/>), the synonyms behind
/// it when asked, read-only for keys that can't change at run time, and the documentation when asked.
/// </summary>
internal sealed class DescribeConfigsHandler(BrokerState state) : IApiHandler<DescribeConfigsRequest, DescribeConfigsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeConfigsResponse> HandleAsync(RequestContext context, DescribeConfigsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeConfigsResponse ErrorResponse(RequestContext context, DescribeConfigsRequest request, ErrorCode error) =>
        new() { Results = [.. request.Resources.Select(r => new DescribeConfigsResponse.DescribeConfigsResult { ErrorCode = (short)error, ResourceType = r.ResourceType, ResourceName = r.ResourceName })] };

    public DescribeConfigsResponse Handle(RequestContext context, DescribeConfigsRequest request)
    {
        var response = new DescribeConfigsResponse();
        foreach (var resource in request.Resources)
        {
            var result = new DescribeConfigsResponse.DescribeConfigsResult { ResourceType = resource.ResourceType, ResourceName = resource.ResourceName, ErrorMessage = null };
            response.Results.Add(result);
            if (state.Authorizer.ConfigResourceError(context, AclOperation.DescribeConfigs, resource.ResourceType, resource.ResourceName) is var refused and not ErrorCode.None)
            {
                result.ErrorCode = (short)refused;
                result.ErrorMessage = "Authorization failed.";
                continue;
            }

            var entries = resource.ResourceType switch
            {
                TopicRegistry.TopicResource => TopicConfigs(resource.ResourceName, result, request.IncludeSynonyms),
                TopicRegistry.BrokerResource => BrokerConfigs(resource.ResourceName, result, request.IncludeSynonyms),
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
                if (!request.IncludeDocumentation)
                {
                    e.Documentation = null;
                }

                result.Configs.Add(e);
            }
        }

        return response;
    }

    private static DescribeConfigsResponse.DescribeConfigsResourceResult Describe(string name, string? value, ConfigSource source, ConfigDefinition? definition, bool readOnly, List<ConfigEntry>? synonyms) =>
        new()
        {
            Name = name,
            Value = definition?.Type == ConfigType.Password ? null : value,
            ReadOnly = readOnly,
            IsDefault = source == ConfigSource.DefaultConfig,
            ConfigSource = (sbyte)source,
            IsSensitive = definition?.Type == ConfigType.Password,
            ConfigType = (sbyte)(definition?.Type ?? ConfigType.Unknown),
            Documentation = definition?.Documentation,
            Synonyms = synonyms?.Select(s => new DescribeConfigsResponse.DescribeConfigsSynonym { Name = s.Name, Value = s.Value, Source = (sbyte)s.Source }).ToList() ?? [],
        };

    private List<DescribeConfigsResponse.DescribeConfigsResourceResult>? TopicConfigs(string name, DescribeConfigsResponse.DescribeConfigsResult result, bool includeSynonyms)
    {
        var topic = state.Topics.Find(name);
        if (topic is null)
        {
            result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
            result.ErrorMessage = $"Topic '{name}' does not exist.";
            return null;
        }

        var layers = state.Topics.ConfigLayersOf(topic);
        var list = new List<DescribeConfigsResponse.DescribeConfigsResourceResult>();
        foreach (var definition in TopicConfigDefinitions.All.Values)
        {
            var (value, source) = ConfigResolver.Topic(definition.Name, layers);
            list.Add(Describe(definition.Name, value, source, definition, definition.ReadOnly, includeSynonyms ? ConfigResolver.TopicSynonyms(definition, layers) : null));
        }

        return list;
    }

    private List<DescribeConfigsResponse.DescribeConfigsResourceResult>? BrokerConfigs(string name, DescribeConfigsResponse.DescribeConfigsResult result, bool includeSynonyms)
    {
        if (name.Length > 0 && name != state.Options.NodeId.ToString(CultureInfo.InvariantCulture))
        {
            result.ErrorCode = (short)ErrorCode.InvalidRequest;
            result.ErrorMessage = $"Unexpected broker id, expected {state.Options.NodeId} or empty string, but received {name}";
            return null;
        }

        var layers = state.Topics.ConfigLayersOf(null);
        var list = new List<DescribeConfigsResponse.DescribeConfigsResourceResult>();
        foreach (var definition in BrokerConfigDefinitions.All.Values)
        {
            var (_, value, source) = ConfigResolver.Broker(definition.Name, layers);
            list.Add(Describe(definition.Name, value, source, definition, definition.ReadOnly, includeSynonyms ? ConfigResolver.BrokerSynonyms(definition.Name, layers) : null));
        }

        // Keys in server.properties that Moldau has no definition for: reported as given, read-only.
        foreach (var (key, value) in layers.Static.Where(p => BrokerConfigDefinitions.Find(p.Key) is null))
        {
            list.Add(Describe(key, value, ConfigSource.StaticBrokerConfig, null, readOnly: true, includeSynonyms ? [new ConfigEntry(key, value, ConfigSource.StaticBrokerConfig)] : null));
        }

        return list;
    }
}
