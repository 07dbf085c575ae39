using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// InitProducerId for idempotent producers: a fresh producer id (from blocks recorded in the
/// metadata log, so ids survive restarts) at epoch 0; a producer that names its current id and
/// epoch (v3+, KIP-360) gets the same id with the epoch bumped.
/// </summary>
internal sealed class InitProducerIdHandler(BrokerState state)
{
    private readonly Dictionary<string, (long Id, short Epoch)> _transactional = new(StringComparer.Ordinal);

    public InitProducerIdResponse Handle(InitProducerIdRequest request)
    {
        if (request.TransactionalId is { Length: > 0 } transactionalId)
        {
            // Transactions are not served (no AddPartitionsToTxn/EndTxn); the id is still fenced
            // per transactional id so a restarted producer bumps the epoch, as Kafka does.
            lock (_transactional)
            {
                var next = _transactional.TryGetValue(transactionalId, out var current) && current.Epoch < short.MaxValue - 1
                    ? (current.Id, (short)(current.Epoch + 1))
                    : (state.Topics.AllocateProducerId(), (short)0);
                _transactional[transactionalId] = next;
                return new InitProducerIdResponse { ProducerId = next.Item1, ProducerEpoch = next.Item2 };
            }
        }

        if (request.ProducerId >= 0 && request.ProducerEpoch >= 0 && request.ProducerEpoch < short.MaxValue - 1)
        {
            return new InitProducerIdResponse { ProducerId = request.ProducerId, ProducerEpoch = (short)(request.ProducerEpoch + 1) };
        }

        return new InitProducerIdResponse { ProducerId = state.Topics.AllocateProducerId(), ProducerEpoch = 0 };
    }
}
