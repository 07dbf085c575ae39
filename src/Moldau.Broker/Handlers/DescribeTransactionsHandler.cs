using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DescribeTransactions (KIP-664): each transactional id's producer, epoch, state, timeout, start
/// time and partitions. Needs Describe on each id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED per id);
/// topics the principal may not describe are left out, as Kafka does.
/// </summary>
internal sealed class DescribeTransactionsHandler(BrokerState state) : IApiHandler<DescribeTransactionsRequest, DescribeTransactionsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeTransactionsResponse> HandleAsync(RequestContext context, DescribeTransactionsRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public DescribeTransactionsResponse ErrorResponse(RequestContext context, DescribeTransactionsRequest request, ErrorCode error) =>
        new() { TransactionStates = [.. request.TransactionalIds.Select(id => Failed(id, error))] };

    private static DescribeTransactionsResponse.TransactionStateData Failed(string id, ErrorCode error) =>
        new() { TransactionalId = id, ErrorCode = (short)error, TransactionState = string.Empty, ProducerId = -1, ProducerEpoch = -1, TransactionStartTimeMs = -1 };

    private async Task<DescribeTransactionsResponse> HandleAsync(RequestContext context, DescribeTransactionsRequest request)
    {
        var response = new DescribeTransactionsResponse();
        foreach (var id in request.TransactionalIds)
        {
            if (!state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.TransactionalId, id))
            {
                response.TransactionStates.Add(Failed(id, ErrorCode.TransactionalIdAuthorizationFailed));
                continue;
            }

            var d = await state.Transactions.DescribeAsync(id).ConfigureAwait(false);
            if (d.Error != ErrorCode.None)
            {
                response.TransactionStates.Add(Failed(id, d.Error));
                continue;
            }

            response.TransactionStates.Add(new DescribeTransactionsResponse.TransactionStateData
            {
                TransactionalId = id,
                TransactionState = d.State,
                TransactionTimeoutMs = d.TimeoutMs,
                TransactionStartTimeMs = d.StartTimestamp,
                ProducerId = d.ProducerId,
                ProducerEpoch = d.ProducerEpoch,
                Topics = [.. d.Topics
                    .Where(t => state.Authorizer.OnTopic(context, AclOperation.Describe, t.Topic))
                    .Select(t => new DescribeTransactionsResponse.TopicData { Topic = t.Topic, Partitions = [.. t.Partitions] })],
            });
        }

        return response;
    }
}
