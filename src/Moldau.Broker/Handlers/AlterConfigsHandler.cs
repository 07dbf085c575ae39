using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>AlterConfigs (the whole set of a resource's dynamic configs is replaced), persisted as ConfigRecords.</summary>
internal sealed class AlterConfigsHandler(BrokerState state) : IApiHandler<AlterConfigsRequest, AlterConfigsResponse>
{
    /// <inheritdoc/>
    public ValueTask<AlterConfigsResponse> HandleAsync(RequestContext context, AlterConfigsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public AlterConfigsResponse ErrorResponse(RequestContext context, AlterConfigsRequest request, ErrorCode error) =>
        new() { Responses = [.. request.Resources.Select(r => new AlterConfigsResponse.AlterConfigsResourceResponse { ErrorCode = (short)error, ResourceType = r.ResourceType, ResourceName = r.ResourceName })] };

    public AlterConfigsResponse Handle(RequestContext context, AlterConfigsRequest request)
    {
        var response = new AlterConfigsResponse();
        foreach (var r in request.Resources)
        {
            var changes = r.Configs.Select(c => (c.Name, c.Value)).ToList();
            var refused = state.Authorizer.ConfigResourceError(context, AclOperation.AlterConfigs, r.ResourceType, r.ResourceName);
            var (error, message) = refused != ErrorCode.None ? (refused, "Authorization failed.") : ConfigChanges.Apply(state, r.ResourceType, r.ResourceName, current => current.Keys.Except(changes.Select(c => c.Name)).Select(k => (k, (string?)null)).Concat(changes).ToList(), request.ValidateOnly);
            response.Responses.Add(new AlterConfigsResponse.AlterConfigsResourceResponse { ResourceType = r.ResourceType, ResourceName = r.ResourceName, ErrorCode = (short)error, ErrorMessage = message });
        }

        return response;
    }
}
