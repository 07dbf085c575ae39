using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// ListTransactions (KIP-664): the transactional ids this coordinator holds, filtered by state
/// names and producer ids, and from v1 by duration (transactions running longer than it, KIP-994).
/// State names Kafka does not know are echoed in unknown_state_filters. Only ids the principal
/// may describe are listed, as Kafka filters them.
/// </summary>
internal sealed class ListTransactionsHandler(BrokerState state) : IApiHandler<ListTransactionsRequest, ListTransactionsResponse>
{
    /// <inheritdoc/>
    public ValueTask<ListTransactionsResponse> HandleAsync(RequestContext context, ListTransactionsRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public ListTransactionsResponse ErrorResponse(RequestContext context, ListTransactionsRequest request, ErrorCode error) => new() { ErrorCode = (short)error };

    private async Task<ListTransactionsResponse> HandleAsync(RequestContext context, ListTransactionsRequest request)
    {
        var duration = context.Version >= 1 ? request.DurationFilter : -1;
        var (listed, unknown) = await state.Transactions.ListAsync(request.ProducerIdFilters, request.StateFilters, duration).ConfigureAwait(false);
        return new ListTransactionsResponse
        {
            UnknownStateFilters = unknown,
            TransactionStates = [.. listed
                .Where(t => state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.TransactionalId, t.TransactionalId))
                .OrderBy(t => t.TransactionalId, StringComparer.Ordinal)
                .Select(t => new ListTransactionsResponse.TransactionStateData { TransactionalId = t.TransactionalId, ProducerId = t.ProducerId, TransactionState = t.State })],
        };
    }
}
