using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// FindCoordinator: this node coordinates every group (key type 0) and every transactional id (key
/// type 1), batched from v4. The coordinator's internal topic is created on first use; Describe on
/// the group or the transactional id is checked first, as Kafka does.
/// </summary>
internal sealed class FindCoordinatorHandler(BrokerState state, Func<bool> ensureOffsetsTopic) : IApiHandler<FindCoordinatorRequest, FindCoordinatorResponse>
{
    /// <inheritdoc/>
    public ValueTask<FindCoordinatorResponse> HandleAsync(RequestContext context, FindCoordinatorRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public FindCoordinatorResponse ErrorResponse(RequestContext context, FindCoordinatorRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, NodeId = -1, Host = string.Empty, Port = -1, Coordinators = [.. request.CoordinatorKeys.Select(k => new FindCoordinatorResponse.Coordinator { Key = k, NodeId = -1, Host = string.Empty, Port = -1, ErrorCode = (short)error })] };

    private const sbyte GroupKey = 0;
    private const sbyte TransactionKey = 1;

    public FindCoordinatorResponse Handle(RequestContext context, FindCoordinatorRequest request)
    {
        var endpoint = state.EndpointFor(context.Connection.ListenerName);
        ErrorCode ErrorFor(string key) => request.KeyType switch
        {
            GroupKey when !state.Authorizer.OnGroup(context, AclOperation.Describe, key) => ErrorCode.GroupAuthorizationFailed,
            GroupKey => ensureOffsetsTopic() ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable,
            TransactionKey when !state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.TransactionalId, key) => ErrorCode.TransactionalIdAuthorizationFailed,
            TransactionKey => state.Topics.FindOrCreateInternal(InternalTopics.TransactionState) is not null ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable,
            _ => ErrorCode.InvalidRequest,
        };
        string? MessageFor(ErrorCode error) => error switch
        {
            ErrorCode.None => null,
            ErrorCode.GroupAuthorizationFailed or ErrorCode.TransactionalIdAuthorizationFailed => "Authorization failed.",
            ErrorCode.InvalidRequest => $"key type {request.KeyType} is not served",
            _ => "The coordinator is not available.",
        };
        // Cluster mode: the live broker a stable hash of the key names (docs/cluster.md).
        (int Node, AdvertisedEndpoint Endpoint) CoordinatorOf(string key)
        {
            if (state.Cluster is { } cluster && cluster.CoordinatorFor(key) is var id && cluster.Brokers.FirstOrDefault(b => b.Id == id)?.EndpointFor(context.Connection.ListenerName) is { } other)
            {
                return (id, other);
            }

            return (state.Options.NodeId, endpoint);
        }

        if (context.Version >= 4)
        {
            var response = new FindCoordinatorResponse();
            foreach (var key in request.CoordinatorKeys)
            {
                var error = ErrorFor(key);
                var message = MessageFor(error);
                var (node, at) = error == ErrorCode.None ? CoordinatorOf(key) : (-1, endpoint);
                response.Coordinators.Add(new FindCoordinatorResponse.Coordinator
                {
                    Key = key,
                    NodeId = node,
                    Host = error == ErrorCode.None ? at.Host : string.Empty,
                    Port = error == ErrorCode.None ? at.Port : -1,
                    ErrorCode = (short)error,
                    ErrorMessage = message,
                });
            }

            return response;
        }

        var single = ErrorFor(request.Key);
        var (singleNode, singleAt) = single == ErrorCode.None ? CoordinatorOf(request.Key) : (-1, endpoint);
        return new FindCoordinatorResponse
        {
            ErrorCode = (short)single,
            ErrorMessage = MessageFor(single),
            NodeId = singleNode,
            Host = single == ErrorCode.None ? singleAt.Host : string.Empty,
            Port = single == ErrorCode.None ? singleAt.Port : -1,
        };
    }
}
