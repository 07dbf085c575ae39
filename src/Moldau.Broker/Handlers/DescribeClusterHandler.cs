using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeCluster: this node is the cluster and its controller.</summary>
internal sealed class DescribeClusterHandler(BrokerState state) : IApiHandler<DescribeClusterRequest, DescribeClusterResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeClusterResponse> HandleAsync(RequestContext context, DescribeClusterRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeClusterResponse ErrorResponse(RequestContext context, DescribeClusterRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, EndpointType = request.EndpointType, ClusterId = string.Empty, ControllerId = -1 };

    public DescribeClusterResponse Handle(RequestContext context, DescribeClusterRequest request)
    {
        var endpoint = state.EndpointFor(context.Connection.ListenerName);
        return new DescribeClusterResponse
        {
            ClusterId = state.ClusterId,
            ControllerId = state.Options.NodeId,
            EndpointType = request.EndpointType,
            ClusterAuthorizedOperations = request.IncludeClusterAuthorizedOperations
                ? AuthorizedOperations.ForCluster(state.Authorizer, context)
                : AuthorizedOperations.NotRequested,
            Brokers = [new DescribeClusterResponse.DescribeClusterBroker { BrokerId = state.Options.NodeId, Host = endpoint.Host, Port = endpoint.Port, Rack = null }],
        };
    }
}
