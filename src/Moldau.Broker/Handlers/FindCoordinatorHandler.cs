using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>FindCoordinator: this node coordinates every group and transactional id (batched from v4).</summary>
internal sealed class FindCoordinatorHandler(BrokerState state, Func<bool> ensureOffsetsTopic)
{
    private const sbyte GroupKey = 0;
    private const sbyte TransactionKey = 1;

    public FindCoordinatorResponse Handle(RequestContext context, FindCoordinatorRequest request)
    {
        var endpoint = state.EndpointFor(context.Connection.ListenerName);
        var error = request.KeyType is GroupKey or TransactionKey
            ? ensureOffsetsTopic() ? ErrorCode.None : ErrorCode.CoordinatorNotAvailable
            : ErrorCode.InvalidRequest;
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
                    ErrorMessage = null,
                });
            }

            return response;
        }

        return new FindCoordinatorResponse
        {
            ErrorCode = (short)error,
            ErrorMessage = null,
            NodeId = node,
            Host = error == ErrorCode.None ? endpoint.Host : string.Empty,
            Port = error == ErrorCode.None ? endpoint.Port : -1,
        };
    }
}
