using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeCluster: this node is the cluster and its controller.</summary>
internal sealed class DescribeClusterHandler(BrokerState state) : IApiHandler<DescribeClusterRequest, DescribeClusterResponse>
{
    private const sbyte BrokerEndpoints = 1;
    private const sbyte ControllerEndpoints = 2;
    /// <inheritdoc/>
    public ValueTask<DescribeClusterResponse> HandleAsync(RequestContext context, DescribeClusterRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeClusterResponse ErrorResponse(RequestContext context, DescribeClusterRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, EndpointType = request.EndpointType, ClusterId = string.Empty, ControllerId = -1 };

    public DescribeClusterResponse Handle(RequestContext context, DescribeClusterRequest request)
    {
        // KIP-919: a broker describes brokers; asking it for controllers (or an unknown kind) is
        // refused as Kafka's AuthHelper refuses it, so the admin client goes to a controller.
        if (request.EndpointType != BrokerEndpoints)
        {
            var unknown = request.EndpointType != ControllerEndpoints;
            return new DescribeClusterResponse
            {
                ErrorCode = (short)(context.Version == 0 ? ErrorCode.InvalidRequest : unknown ? ErrorCode.UnsupportedEndpointType : ErrorCode.MismatchedEndpointType),
                ErrorMessage = unknown
                    ? $"Unsupported endpoint type {request.EndpointType}"
                    : "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER",
            };
        }

        var endpoint = state.EndpointFor(context.Connection.ListenerName);
        var response = new DescribeClusterResponse
        {
            ClusterId = state.ClusterId,
            ControllerId = state.Options.NodeId,
            EndpointType = request.EndpointType,
            ClusterAuthorizedOperations = request.IncludeClusterAuthorizedOperations
                ? AuthorizedOperations.ForCluster(state.Authorizer, context)
                : AuthorizedOperations.NotRequested,
            Brokers = [new DescribeClusterResponse.DescribeClusterBroker { BrokerId = state.Options.NodeId, Host = endpoint.Host, Port = endpoint.Port, Rack = null }],
        };
        if (state.Cluster is { } cluster)
        {
            // Cluster mode: the live brokers, as Metadata lists them.
            response.Brokers = [.. cluster.Brokers.Select(b => (Broker: b, Endpoint: b.EndpointFor(context.Connection.ListenerName)))
                .Where(b => b.Endpoint is not null)
                .Select(b => new DescribeClusterResponse.DescribeClusterBroker { BrokerId = b.Broker.Id, Host = b.Endpoint!.Host, Port = b.Endpoint.Port, Rack = b.Broker.Rack })];
            response.ControllerId = response.Brokers.Count > 0 ? response.Brokers.Min(b => b.BrokerId) : state.Options.NodeId;
        }

        return response;
    }
}
