using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetForLeaderEpoch (KIP-320): where a leader epoch ends, from the partition's leader-epoch cache.</summary>
internal sealed class OffsetForLeaderEpochHandler(BrokerState state) : IApiHandler<OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetForLeaderEpochResponse> HandleAsync(RequestContext context, OffsetForLeaderEpochRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public OffsetForLeaderEpochResponse ErrorResponse(RequestContext context, OffsetForLeaderEpochRequest request, ErrorCode error) =>
        new() { Topics = [.. request.Topics.Select(t => new OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult { Topic = t.Topic, Partitions = [.. t.Partitions.Select(p => new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = p.Partition, ErrorCode = (short)error, LeaderEpoch = -1, EndOffset = -1 })] })] };

    public OffsetForLeaderEpochResponse Handle(RequestContext context, OffsetForLeaderEpochRequest request)
    {
        var response = new OffsetForLeaderEpochResponse();
        foreach (var t in request.Topics)
        {
            var topicResult = new OffsetForLeaderEpochResponse.OffsetForLeaderTopicResult { Topic = t.Topic };
            response.Topics.Add(topicResult);
            var topic = state.Topics.Find(t.Topic);
            var allowed = state.Authorizer.OnTopic(context, AclOperation.Describe, t.Topic);
            foreach (var p in t.Partitions)
            {
                var r = new OffsetForLeaderEpochResponse.EpochEndOffset { Partition = p.Partition };
                topicResult.Partitions.Add(r);
                if (!allowed)
                {
                    r.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    r.LeaderEpoch = -1;
                    r.EndOffset = -1;
                    continue;
                }
                if (topic?.Partition(p.Partition) is not { } partition)
                {
                    r.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }

                if (state.Topics.LogOf(ref partition) is not { } log)
                {
                    r.ErrorCode = (short)(partition.IsOffline ? ErrorCode.KafkaStorageError : ErrorCode.UnknownTopicOrPartition);
                    continue;
                }

                if (p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch != partition.LeaderEpoch)
                {
                    r.ErrorCode = (short)(p.CurrentLeaderEpoch < partition.LeaderEpoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    continue;
                }

                (r.LeaderEpoch, r.EndOffset) = log.EndOffsetForEpoch(p.LeaderEpoch);
            }
        }

        return response;
    }
}
