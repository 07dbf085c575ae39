using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// InitProducerId for idempotent producers: a fresh producer id (from blocks recorded in the
/// metadata log, so ids survive restarts) at epoch 0; a producer that names its current id and
/// epoch (v3+, KIP-360) gets the same id with the epoch bumped. Transactional ids are refused
/// with TRANSACTIONAL_ID_AUTHORIZATION_FAILED until transactions are served.
/// </summary>
internal sealed class InitProducerIdHandler(BrokerState state) : IApiHandler<InitProducerIdRequest, InitProducerIdResponse>
{
    /// <inheritdoc/>
    public ValueTask<InitProducerIdResponse> HandleAsync(RequestContext context, InitProducerIdRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public InitProducerIdResponse ErrorResponse(RequestContext context, InitProducerIdRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, ProducerId = -1, ProducerEpoch = -1 };

    public InitProducerIdResponse Handle(RequestContext context, InitProducerIdRequest request)
    {
        // KIP-679: an idempotent producer needs IdempotentWrite on the cluster or Write on some topic.
        if (request.TransactionalId is not { Length: > 0 }
            && !state.Authorizer.OnCluster(context, AclOperation.IdempotentWrite)
            && !state.Authorizer.AuthorizeAny(context, AclOperation.Write, ResourceType.Topic))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        if (request.TransactionalId is { Length: > 0 })
        {
            // Transactions are a later issue; until then a transactional producer is refused
            // plainly rather than left retrying.
            return new InitProducerIdResponse { ErrorCode = (short)ErrorCode.TransactionalIdAuthorizationFailed, ProducerId = -1, ProducerEpoch = -1 };
        }

        if (request.ProducerId >= 0 && request.ProducerEpoch >= 0 && request.ProducerEpoch < short.MaxValue - 1)
        {
            return new InitProducerIdResponse { ProducerId = request.ProducerId, ProducerEpoch = (short)(request.ProducerEpoch + 1) };
        }

        return new InitProducerIdResponse { ProducerId = state.ProducerIds.GenerateProducerId(), ProducerEpoch = 0 };
    }
}
