using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// AddPartitionsToTxn. v0-v3 (clients): one transaction; Write on the transactional id and on each
/// topic (never an internal one), every partition existing, else nothing is added (the others
/// answer OPERATION_NOT_ATTEMPTED). v4 (brokers, KIP-890 part 1): a batch of transactions, each
/// added or, with verify_only, only checked: is each partition in the producer's open transaction
/// (TRANSACTION_ABORTABLE when not); needs ClusterAction, as Kafka checks.
/// </summary>
internal sealed class AddPartitionsToTxnHandler(BrokerState state) : IApiHandler<AddPartitionsToTxnRequest, AddPartitionsToTxnResponse>
{
    /// <inheritdoc/>
    public ValueTask<AddPartitionsToTxnResponse> HandleAsync(RequestContext context, AddPartitionsToTxnRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public AddPartitionsToTxnResponse ErrorResponse(RequestContext context, AddPartitionsToTxnRequest request, ErrorCode error)
    {
        if (context.Version >= 4)
        {
            return new AddPartitionsToTxnResponse { ErrorCode = (short)error };
        }

        var response = new AddPartitionsToTxnResponse();
        response.ResultsByTopicV3AndBelow.AddRange(Results(Partitions(request.V3AndBelowTopics).Select(p => (p.Topic, p.Partition, error))));
        return response;
    }

    private async Task<AddPartitionsToTxnResponse> HandleAsync(RequestContext context, AddPartitionsToTxnRequest request)
    {
        if (context.Version < 4)
        {
            var results = await AddAsync(context, request.V3AndBelowTransactionalId, request.V3AndBelowProducerId, request.V3AndBelowProducerEpoch, verifyOnly: false, Partitions(request.V3AndBelowTopics)).ConfigureAwait(false);
            var response = new AddPartitionsToTxnResponse();
            response.ResultsByTopicV3AndBelow.AddRange(results);
            return response;
        }

        // v4 and later come from brokers.
        if (!state.Authorizer.OnCluster(context, AclOperation.ClusterAction))
        {
            return ErrorResponse(context, request, ErrorCode.ClusterAuthorizationFailed);
        }

        var batched = new AddPartitionsToTxnResponse();
        foreach (var t in request.Transactions)
        {
            var results = await AddAsync(context, t.TransactionalId, t.ProducerId, t.ProducerEpoch, t.VerifyOnly, Partitions(t.Topics)).ConfigureAwait(false);
            batched.ResultsByTransaction.Add(new AddPartitionsToTxnResponse.AddPartitionsToTxnResult { TransactionalId = t.TransactionalId, TopicResults = results });
        }

        return batched;
    }

    private async Task<List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult>> AddAsync(
        RequestContext context, string transactionalId, long producerId, short producerEpoch, bool verifyOnly, List<(string Topic, int Partition)> partitions)
    {
        var client = context.Version < 4;
        if (client && !state.Authorizer.Authorize(context, AclOperation.Write, ResourceType.TransactionalId, transactionalId))
        {
            return Results(partitions.Select(p => (p.Topic, p.Partition, ErrorCode.TransactionalIdAuthorizationFailed)));
        }

        var checks = partitions.Select(p => (p.Topic, p.Partition, Error:
            client && (InternalTopics.IsInternal(p.Topic) || !state.Authorizer.OnTopic(context, AclOperation.Write, p.Topic)) ? ErrorCode.TopicAuthorizationFailed
            : state.Topics.Find(p.Topic)?.Partition(p.Partition) is null ? ErrorCode.UnknownTopicOrPartition
            : ErrorCode.None)).ToList();
        if (checks.Any(c => c.Error != ErrorCode.None))
        {
            // Any partition refused: none is added, the others were not attempted.
            return Results(checks.Select(c => c.Error == ErrorCode.None ? (c.Topic, c.Partition, ErrorCode.OperationNotAttempted) : c));
        }

        if (verifyOnly)
        {
            return Results(partitions.Select(p => (p.Topic, p.Partition, state.Transactions.VerifyPartition(transactionalId, producerId, producerEpoch, p.Topic, p.Partition))));
        }

        var error = await state.Transactions.AddPartitionsAsync(transactionalId, producerId, producerEpoch, partitions).ConfigureAwait(false);
        error = TransactionErrors.ForVersion(error, context.Version, firstVersion: 2);
        return Results(partitions.Select(p => (p.Topic, p.Partition, error)));
    }

    private static List<(string Topic, int Partition)> Partitions(List<AddPartitionsToTxnRequest.AddPartitionsToTxnTopic> topics) =>
        [.. topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p))).Distinct()];

    private static List<AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult> Results(IEnumerable<(string Topic, int Partition, ErrorCode Error)> errors) =>
        [.. errors.GroupBy(e => e.Topic, StringComparer.Ordinal).Select(g => new AddPartitionsToTxnResponse.AddPartitionsToTxnTopicResult
        {
            Name = g.Key,
            ResultsByPartition = [.. g.Select(e => new AddPartitionsToTxnResponse.AddPartitionsToTxnPartitionResult { PartitionIndex = e.Partition, PartitionErrorCode = (short)e.Error })],
        })];
}
