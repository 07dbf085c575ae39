using System.Globalization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>IncrementalAlterConfigs: SET, DELETE, APPEND and SUBTRACT per key (KIP-339).</summary>
internal sealed class IncrementalAlterConfigsHandler(BrokerState state) : IApiHandler<IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse>
{
    /// <inheritdoc/>
    public ValueTask<IncrementalAlterConfigsResponse> HandleAsync(RequestContext context, IncrementalAlterConfigsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(request));

    /// <inheritdoc/>
    public IncrementalAlterConfigsResponse ErrorResponse(RequestContext context, IncrementalAlterConfigsRequest request, ErrorCode error) =>
        new() { Responses = [.. request.Resources.Select(r => new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse { ErrorCode = (short)error, ResourceType = r.ResourceType, ResourceName = r.ResourceName })] };

    private const sbyte Set = 0;
    private const sbyte Delete = 1;
    private const sbyte Append = 2;
    private const sbyte Subtract = 3;

    public IncrementalAlterConfigsResponse Handle(IncrementalAlterConfigsRequest request)
    {
        var response = new IncrementalAlterConfigsResponse();
        foreach (var r in request.Resources)
        {
            var (error, message) = ConfigChanges.Apply(state, r.ResourceType, r.ResourceName, current => r.Configs.Select(c =>
            {
                var existing = current.GetValueOrDefault(c.Name)?.Split(',', StringSplitOptions.RemoveEmptyEntries) ?? [];
                var given = c.Value?.Split(',', StringSplitOptions.RemoveEmptyEntries) ?? [];
                return c.ConfigOperation switch
                {
                    Set => (c.Name, c.Value),
                    Delete => (c.Name, (string?)null),
                    Append => (c.Name, string.Join(",", existing.Concat(given.Except(existing)))),
                    Subtract => (c.Name, string.Join(",", existing.Except(given))),
                    _ => throw new ArgumentException($"unknown config operation {c.ConfigOperation}"),
                };
            }).ToList(), request.ValidateOnly);
            response.Responses.Add(new IncrementalAlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = r.ResourceType, ResourceName = r.ResourceName, ErrorCode = (short)error, ErrorMessage = message });
        }

        return response;
    }
}
