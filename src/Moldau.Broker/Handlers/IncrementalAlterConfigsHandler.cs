using Moldau.Broker.Authorization;
using Moldau.Broker.Configuration;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT per key (KIP-339).</summary>
internal sealed class IncrementalAlterConfigsHandler(BrokerState state) : IApiHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>
{
    /// <inheritdoc/>
    public ValueTask<IncrementalAlterConfigsResponse> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public IncrementalAlterConfigsResponse ErrorResponse(RequestContext context, IncrementalAlterConfigsRequest request, ErrorCode error) =>
        new() { Responses = [.. request.Resources.Select(r => new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse { ErrorCode = (short)error, ResourceType = r.ResourceType, ResourceName = r.ResourceName })] };

    private const sbyte Set = 0;
    private const sbyte Delete = 1;
    private const sbyte Append = 2;
    private const sbyte Subtract = 3;

    public IncrementalAlterConfigsResponse Handle(RequestContext context, IncrementalAlterConfigsRequest request)
    {
        var response = new IncrementalAlterConfigsResponse();
        foreach (var r in request.Resources)
        {
            var refused = state.Authorizer.ConfigResourceError(context, AclOperation.AlterConfigs, r.ResourceType, r.ResourceName);
            var (error, message) = refused != ErrorCode.None ? (refused, "Authorization failed.") : ConfigChanges.Apply(state, r.ResourceType, r.ResourceName, current => r.Configs.Select(c => Plan(r.ResourceType, current, c)).ToList(), request.ValidateOnly);
            response.Responses.Add(new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = r.ResourceType, ResourceName = r.ResourceName, ErrorCode = (short)error, ErrorMessage = message });
        }

        return response;
    }

    /// <summary>
    /// One operation as the new value of its key (null: deleted). APPEND and SUBTRACT apply to
    /// list configs only, and start from the key's current override or else its default, as in Kafka.
    /// </summary>
    private static (string Name, string? Value) Plan(sbyte resourceType, IReadOnlyDictionary<string, string> current, IncrementalAlterConfigsRequest.AlterableConfig c)
    {
        if (c.ConfigOperation is Set)
        {
            return (c.Name, c.Value);
        }

        if (c.ConfigOperation is Delete)
        {
            return (c.Name, null);
        }

        if (c.ConfigOperation is not (Append or Subtract))
        {
            throw new ArgumentException($"unknown config operation {c.ConfigOperation}");
        }

        var definition = resourceType == TopicRegistry.TopicResource ? TopicConfigDefinitions.Find(c.Name) : BrokerConfigDefinitions.Find(c.Name);
        if (definition is null)
        {
            return (c.Name, c.Value); // refused with the unknown name's message
        }

        if (definition.Type != ConfigType.List)
        {
            throw new InvalidConfigException($"Config value {(c.ConfigOperation == Append ? "append" : "subtract")} is not allowed for config key: {c.Name}");
        }

        var existing = (current.GetValueOrDefault(c.Name) ?? definition.Default ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var given = (c.Value ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return c.ConfigOperation == Append
            ? (c.Name, string.Join(",", existing.Concat(given.Except(existing, StringComparer.Ordinal))))
            : (c.Name, string.Join(",", existing.Except(given, StringComparer.Ordinal)));
    }
}
