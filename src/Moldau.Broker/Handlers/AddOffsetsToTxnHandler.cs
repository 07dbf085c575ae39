using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// AddOffsetsToTxn: the group's __consumer_offsets partition joins the producer's transaction, so
/// the offsets it then commits with TxnOffsetCommit get the transaction's marker. Needs Write on
/// the transactional id and Read on the group, as Kafka checks.
/// </summary>
internal sealed class AddOffsetsToTxnHandler(BrokerState state) : IApiHandler<AddOffsetsToTxnRequest, AddOffsetsToTxnResponse>
{
    /// <inheritdoc/>
    public ValueTask<AddOffsetsToTxnResponse> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public AddOffsetsToTxnResponse ErrorResponse(RequestContext context, AddOffsetsToTxnRequest request, ErrorCode error) => new() { ErrorCode = (short)error };

    private async Task<AddOffsetsToTxnResponse> HandleAsync(RequestContext context, AddOffsetsToTxnRequest request)
    {
        if (!state.Authorizer.Authorize(context, AclOperation.Write, ResourceType.TransactionalId, request.TransactionalId))
        {
            return ErrorResponse(context, request, ErrorCode.TransactionalIdAuthorizationFailed);
        }

        if (!state.Authorizer.OnGroup(context, AclOperation.Read, request.GroupId))
        {
            return ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed);
        }

        var partition = OffsetsTopic.PartitionFor(request.GroupId, OffsetsPartitions(state));
        var error = await state.Transactions.AddPartitionsAsync(request.TransactionalId, request.ProducerId, request.ProducerEpoch, [(InternalTopics.ConsumerOffsets, partition)]).ConfigureAwait(false);
        return ErrorResponse(context, request, TransactionErrors.ForVersion(error, context.Version, firstVersion: 2));
    }

    /// <summary>The partitions groups are placed over: those __consumer_offsets has, else offsets.topic.num.partitions (as the group coordinator places them).</summary>
    internal static int OffsetsPartitions(BrokerState state) =>
        state.Topics.Find(InternalTopics.ConsumerOffsets) is { Partitions.Length: > 0 } t ? t.Partitions.Length : Math.Max(1, state.Options.OffsetsTopicNumPartitions);
}
