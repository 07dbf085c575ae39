using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DescribeProducers: the idempotent and transactional producers each partition tracks, with the first offset of an open transaction.</summary>
internal sealed class DescribeProducersHandler(BrokerState state) : IApiHandler<DescribeProducersRequest, DescribeProducersResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeProducersResponse> HandleAsync(RequestContext context, DescribeProducersRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeProducersResponse ErrorResponse(RequestContext context, DescribeProducersRequest request, ErrorCode error) =>
        new() { Topics = [.. request.Topics.Select(t => new DescribeProducersResponse.TopicResponse { Name = t.Name, Partitions = [.. t.PartitionIndexes.Select(i => new DescribeProducersResponse.PartitionResponse { PartitionIndex = i, ErrorCode = (short)error })] })] };

    public DescribeProducersResponse Handle(RequestContext context, DescribeProducersRequest request)
    {
        var response = new DescribeProducersResponse();
        foreach (var t in request.Topics)
        {
            var topicResponse = new DescribeProducersResponse.TopicResponse { Name = t.Name };
            response.Topics.Add(topicResponse);
            var topic = state.Topics.Find(t.Name);
            var allowed = state.Authorizer.OnTopic(context, AclOperation.Read, t.Name);
            foreach (var index in t.PartitionIndexes)
            {
                var r = new DescribeProducersResponse.PartitionResponse { PartitionIndex = index };
                topicResponse.Partitions.Add(r);
                if (!allowed)
                {
                    r.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                if (topic?.Partition(index) is not { } partition || state.Topics.LogOf(partition) is not { } log)
                {
                    r.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }

                r.ActiveProducers = log.ActiveProducers()
                    .Select(p => new DescribeProducersResponse.ProducerState
                    {
                        ProducerId = p.ProducerId,
                        ProducerEpoch = p.Epoch,
                        LastSequence = p.LastSequence,
                        LastTimestamp = p.LastTimestamp,
                        CoordinatorEpoch = p.CoordinatorEpoch,
                        CurrentTxnStartOffset = p.CurrentTxnStartOffset,
                    })
                    .ToList();
            }
        }

        return response;
    }
}
