using Moldau.Broker.Authorization;
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
        var keyError = request.KeyType == GroupKey
            ? ensureOffsetsTopic() ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable
            : request.KeyType == TransactionKey ? ErrorCode.TransactionalIdAuthorizationFailed : ErrorCode.InvalidRequest;

        // Describe on the group, as Kafka checks before it names a coordinator.
        ErrorCode ErrorFor(string key) =>
            keyError == ErrorCode.None && !state.Authorizer.OnGroup(context, AclOperation.Describe, key) ? ErrorCode.GroupAuthorizationFailed : keyError;
        string? MessageFor(ErrorCode error) => error switch
        {
            ErrorCode.None => null,
            ErrorCode.TransactionalIdAuthorizationFailed => "Moldau does not serve transactions yet",
            ErrorCode.GroupAuthorizationFailed => "Authorization failed.",
            _ => $"key type {request.KeyType} is not served",
        };
        if (context.Version >= 4)
        {
            var response = new FindCoordinatorResponse();
            foreach (var key in request.CoordinatorKeys)
            {
                var error = ErrorFor(key);
                var message = MessageFor(error);
                var node = error == ErrorCode.None ? state.Options.NodeId : -1;
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

        var single = ErrorFor(request.Key);
        return new FindCoordinatorResponse
        {
            ErrorCode = (short)single,
            ErrorMessage = MessageFor(single),
            NodeId = single == ErrorCode.None ? state.Options.NodeId : -1,
            Host = single == ErrorCode.None ? endpoint.Host : string.Empty,
            Port = single == ErrorCode.None ? endpoint.Port : -1,
        };
    }
}
