using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// InitProducerId. Idempotent producers (no transactional id) get a fresh producer id (from
/// blocks recorded in the metadata log, so ids survive restarts) at epoch 0; one that names its
/// current id and epoch (v3+, KIP-360) gets the same id with the epoch bumped. A transactional id
/// goes to the transaction coordinator: a new id or the epoch bumped (fencing the previous
/// producer), an open transaction aborted first (CONCURRENT_TRANSACTIONS meanwhile), as Kafka.
/// </summary>
internal sealed class InitProducerIdHandler(BrokerState state) : IApiHandler<InitProducerIdRequest, InitProducerIdResponse>
{
    /// <inheritdoc/>
    public ValueTask<InitProducerIdResponse> HandleAsync(RequestContext context, InitProducerIdRequest request, CancellationToken cancellationToken) =>
        request.TransactionalId is null ? ValueTask.FromResult(Idempotent(context, request)) : new(TransactionalAsync(context, request));

    /// <inheritdoc/>
    public InitProducerIdResponse ErrorResponse(RequestContext context, InitProducerIdRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 };

    private InitProducerIdResponse Idempotent(RequestContext context, InitProducerIdRequest request)
    {
        // KIP-679: an idempotent producer needs IdempotentWrite on the cluster or Write on some topic.
        if (!state.Authorizer.OnCluster(context, AclOperation.IdempotentWrite)
            && !state.Authorizer.AuthorizeAny(context, AclOperation.Write, ResourceType.Topic))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        if (request.ProducerId >= 0 && request.ProducerEpoch >= 0 && request.ProducerEpoch < short.MaxValue - 1)
        {
            return new InitProducerIdResponse { ProducerId = request.ProducerId, ProducerEpoch = (short)(request.ProducerEpoch + 1) };
        }

        return new InitProducerIdResponse { ProducerId = state.ProducerIds.GenerateProducerId(), ProducerEpoch = 0 };
    }

    private async Task<InitProducerIdResponse> TransactionalAsync(RequestContext context, InitProducerIdRequest request)
    {
        var id = request.TransactionalId!;
        if (state.Cluster is not null)
        {
            // Cluster mode has no transaction coordinator over PostgreSQL yet (docs/cluster.md):
            // a fatal error the clients report, rather than a retriable one they loop on.
            return new InitProducerIdResponse { ErrorCode = (short)ErrorCode.UnsupportedVersion, ProducerId = -1, ProducerEpoch = -1 };
        }

        if (!state.Authorizer.Authorize(context, AclOperation.Write, ResourceType.TransactionalId, id))
        {
            return ErrorResponse(context, request, ErrorCode.TransactionalIdAuthorizationFailed);
        }

        // Both -1 (a new producer) or both given (KIP-360): one without the other is not a request Kafka accepts.
        if ((request.ProducerId == -1) != (request.ProducerEpoch == -1))
        {
            return ErrorResponse(context, request, ErrorCode.InvalidRequest);
        }

        var result = await state.Transactions.InitProducerIdAsync(id, request.TransactionTimeoutMs, request.ProducerId, request.ProducerEpoch).ConfigureAwait(false);

        // Before v4 clients do not know PRODUCER_FENCED: Kafka answers INVALID_PRODUCER_EPOCH, handled alike.
        var error = result.Error == ErrorCode.ProducerFenced && context.Version < 4 ? ErrorCode.InvalidProducerEpoch : result.Error;
        return new InitProducerIdResponse { ErrorCode = (short)error, ProducerId = result.ProducerId, ProducerEpoch = result.ProducerEpoch };
    }
}
