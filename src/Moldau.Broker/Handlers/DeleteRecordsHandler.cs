using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DeleteRecords: advances the log start offset (-1 means the high watermark).</summary>
internal sealed class DeleteRecordsHandler(BrokerState state) : IApiHandler<DeleteRecordsRequest, DeleteRecordsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DeleteRecordsResponse> HandleAsync(RequestContext context, DeleteRecordsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DeleteRecordsResponse ErrorResponse(RequestContext context, DeleteRecordsRequest request, ErrorCode error) =>
        new() { Topics = [.. request.Topics.Select(t => new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name, Partitions = [.. t.Partitions.Select(p => new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1, ErrorCode = (short)error })] })] };

    public DeleteRecordsResponse Handle(RequestContext context, DeleteRecordsRequest request)
    {
        var response = new DeleteRecordsResponse();
        foreach (var t in request.Topics)
        {
            var topicResult = new DeleteRecordsResponse.DeleteRecordsTopicResult { Name = t.Name };
            response.Topics.Add(topicResult);
            var topic = state.Topics.Find(t.Name);
            var allowed = state.Authorizer.OnTopic(context, AclOperation.Delete, t.Name);
            foreach (var p in t.Partitions)
            {
                var r = new DeleteRecordsResponse.DeleteRecordsPartitionResult { PartitionIndex = p.PartitionIndex, LowWatermark = -1 };
                topicResult.Partitions.Add(r);
                if (!allowed)
                {
                    r.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    continue;
                }
                var partition = topic?.Partition(p.PartitionIndex);
                if (partition is null || state.Topics.LogOf(partition) is not { } log)
                {
                    r.ErrorCode = (short)(partition?.IsOffline == true ? ErrorCode.KafkaStorageError : ErrorCode.UnknownTopicOrPartition);
                    continue;
                }

                // Cluster mode: the catalog moves the log start (its high watermark is the truth).
                if (state.Topics.Catalog?.DeleteRecords(log, p.Offset) is { } done)
                {
                    r.ErrorCode = (short)done.Error;
                    r.LowWatermark = done.LowWatermark;
                    continue;
                }

                var target = p.Offset == -1 ? log.HighWatermark : p.Offset;
                if (target < 0 || target > log.HighWatermark)
                {
                    r.ErrorCode = (short)ErrorCode.OffsetOutOfRange;
                    continue;
                }

                try
                {
                    state.Topics.AdvanceLogStart(log, target);
                }
                catch (IOException)
                {
                    r.ErrorCode = (short)ErrorCode.KafkaStorageError;
                    continue;
                }

                r.LowWatermark = log.LogStartOffset;
            }
        }

        return response;
    }
}
