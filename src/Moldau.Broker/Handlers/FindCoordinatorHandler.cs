using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>FindCoordinator: this node coordinates every group and transactional id (batched from v4).</summary>
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
        // Transactions are a later issue: a transaction key is refused with a message that says so.
        var error = request.KeyType == GroupKey
            ? ensureOffsetsTopic() ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable
            : request.KeyType == TransactionKey ? ErrorCode.TransactionalIdAuthorizationFailed : ErrorCode.InvalidRequest;
        var message = error switch
        {
            ErrorCode.None => null,
            ErrorCode.TransactionalIdAuthorizationFailed => "Moldau does not serve transactions yet",
            _ => $"key type {request.KeyType} is not served",
        };
        var node = error == ErrorCode.None ? state.Options.NodeId : -1;
        if (context.Version >= 4)
        {
            var response = new FindCoordinatorResponse();
            foreach (var key in request.CoordinatorKeys)
            {
                response.Coordinators.Add(new FindCoordinatorResponse.Coordinator
                {
                    Key = key,
                    NodeId = node,
                    Host = error == ErrorCode.None ? endpoint.Host : string.Empty,
                    Port = error == ErrorCode.None ? endpoint.Port : -1,
                    ErrorCode = (short)error,
                    ErrorMessage = message,
                });
            }

            return response;
        }

        return new FindCoordinatorResponse
        {
            ErrorCode = (short)error,
            ErrorMessage = message,
            NodeId = node,
            Host = error == ErrorCode.None ? endpoint.Host : string.Empty,
            Port = error == ErrorCode.None ? endpoint.Port : -1,
        };
    }
}
