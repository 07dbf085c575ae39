using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// TxnOffsetCommit: a transactional producer commits its consumer's offsets inside its
/// transaction (sendOffsetsToTransaction). The offsets go to __consumer_offsets in a
/// transactional batch and count once the transaction commits (see
/// <see cref="GroupCoordinator.CommitTransactionalAsync"/>).
/// </summary>
internal sealed class TxnOffsetCommitHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<TxnOffsetCommitRequest, TxnOffsetCommitResponse>
{
    /// <inheritdoc/>
    public ValueTask<TxnOffsetCommitResponse> HandleAsync(RequestContext context, TxnOffsetCommitRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public TxnOffsetCommitResponse ErrorResponse(RequestContext context, TxnOffsetCommitRequest request, ErrorCode error) =>
        Response(request.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, error))));

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<TxnOffsetCommitResponse> HandleAsync(RequestContext context, TxnOffsetCommitRequest request)
    {
        // As Kafka's handleTxnOffsetCommitRequest: Write on the transactional id (the producer id
        // is implied by it), Read on the group, then Read on each topic for its partitions.
        if (!authorizer.Authorize(context, AclOperation.Write, ResourceType.TransactionalId, request.TransactionalId))
        {
            return ErrorResponse(context, request, ErrorCode.TransactionalIdAuthorizationFailed);
        }

        if (!authorizer.OnGroup(context, AclOperation.Read, request.GroupId))
        {
            return ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed);
        }

        var refused = request.Topics.Where(t => !authorizer.OnTopic(context, AclOperation.Read, t.Name)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var offsets = request.Topics
            .Where(t => !refused.Contains(t.Name))
            .SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.CommittedOffset, context.Version >= 2 ? p.CommittedLeaderEpoch : -1, p.CommittedMetadata)))
            .ToList();

        // v0-v2 carry no group metadata: the generation is -1, as Kafka reads them.
        var results = offsets.Count == 0
            ? []
            : await coordinator.CommitTransactionalAsync(request.GroupId, request.TransactionalId, request.ProducerId, request.ProducerEpoch, request.GenerationId, request.MemberId, request.GroupInstanceId, offsets).ConfigureAwait(false);
        // Clients before KAFKA-7296 (v0-v1) do not retry COORDINATOR_LOAD_IN_PROGRESS, and before
        // v4 they do not know TRANSACTION_ABORTABLE: Kafka answers them COORDINATOR_NOT_AVAILABLE
        // and INVALID_TXN_STATE instead.
        results = [.. results.Select(r => r.Error switch
        {
            ErrorCode.CoordinatorLoadInProgress when context.Version < 2 => (r.Topic, r.Partition, ErrorCode.CoordinatorNotAvailable),
            ErrorCode.TransactionAbortable when context.Version < 4 => (r.Topic, r.Partition, ErrorCode.InvalidTxnState),
            _ => r,
        })];

        return Response(results.Concat(request.Topics.Where(t => refused.Contains(t.Name)).SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, ErrorCode.TopicAuthorizationFailed)))));
    }

    private static TxnOffsetCommitResponse Response(IEnumerable<(string Topic, int Partition, ErrorCode Error)> results) => new()
    {
        Topics = results.GroupBy(r => r.Topic, StringComparer.Ordinal).Select(g => new TxnOffsetCommitResponse.TxnOffsetCommitResponseTopic
        {
            Name = g.Key,
            Partitions = g.Select(r => new TxnOffsetCommitResponse.TxnOffsetCommitResponsePartition { PartitionIndex = r.Partition, ErrorCode = (short)r.Error }).ToList(),
        }).ToList(),
    };
}
