using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// EndTxn: commits or aborts the producer's transaction. Answered once PrepareCommit /
/// PrepareAbort is durable in __transaction_state, as Kafka answers; the markers and the Complete
/// record follow. Needs Write on the transactional id. v5 (KIP-890 part 2) is not served.
/// </summary>
internal sealed class EndTxnHandler(BrokerState state) : IApiHandler<EndTxnRequest, EndTxnResponse>
{
    /// <inheritdoc/>
    public ValueTask<EndTxnResponse> HandleAsync(RequestContext context, EndTxnRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public EndTxnResponse ErrorResponse(RequestContext context, EndTxnRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 };

    private async Task<EndTxnResponse> HandleAsync(RequestContext context, EndTxnRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Write, ResourceType.TransactionalId, request.TransactionalId))
        {
            return ErrorResponse(context, request, ErrorCode.TransactionalIdAuthorizationFailed);
        }

        var error = await state.Transactions.EndTransactionAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.Committed).ConfigureAwait(false);
        return ErrorResponse(context, request, TransactionErrors.ForVersion(error, context.Version, firstVersion: 2));
    }
}
