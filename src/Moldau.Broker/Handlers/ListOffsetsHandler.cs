using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Handlers;

/// <summary>
/// ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), or by
/// timestamp. With isolation_level READ_COMMITTED (1) the latest offset is the last stable offset,
/// and a lookup finds nothing at or past it.
/// </summary>
internal sealed class ListOffsetsHandler(BrokerState state) : IApiHandler<ListOffsetsRequest, ListOffsetsResponse>
{
    private const long Latest = -1;
    private const long Earliest = -2;
    private const long MaxTimestamp = -3;
    private const long EarliestLocal = -4;
    private const long LatestTiered = -5;

    /// <summary>The first record stamped at or after <paramref name="timestamp"/>: candidate batches from the headers, then their records.</summary>
    private static (long Offset, long Timestamp)? FindByTimestamp(IPartitionLog log, long timestamp)
    {
        var from = log.LogStartOffset;
        while (log.FindOffsetForTimestamp(timestamp, from) is { } candidate)
        {
            if (FirstRecordAtOrAfter(log, candidate.Offset, timestamp) is { } exact)
            {
                return exact;
            }

            var bytes = log.Read(candidate.Offset, 1, minOneBatch: true, log.HighWatermark);
            if (bytes.Length < RecordBatch.HeaderSize)
            {
                return null;
            }

            from = new RecordBatch(bytes[..(int)RecordBatch.DeclaredSize(bytes.Span)]).LastOffset + 1;
        }

        return null;
    }

    /// <summary>The first record of the batch at <paramref name="batchOffset"/> stamped at or after <paramref name="timestamp"/>.</summary>
    private static (long Offset, long Timestamp)? FirstRecordAtOrAfter(IPartitionLog log, long batchOffset, long timestamp)
    {
        var bytes = log.Read(batchOffset, 1, minOneBatch: true, log.HighWatermark);
        if (bytes.Length == 0)
        {
            return null;
        }

        try
        {
            var batch = new RecordBatch(bytes[..(int)RecordBatch.DeclaredSize(bytes.Span)]);
            if (batch.IsLogAppendTime)
            {
                return (Math.Max(batch.BaseOffset, log.LogStartOffset), batch.MaxTimestamp);
            }

            // Streamed, and bounded as produce is: a batch that cannot be read (or inflates past
            // the limit) is passed over, never held whole.
            using var stream = batch.Compression == CompressionType.None ? null : RecordCompression.OpenDecompressor(batch.Compression, batch.RecordsSection);
            using var scanner = stream is null ? new RecordScanner(batch.RecordsSection.Span) : new RecordScanner(stream);
            for (var i = 0; i < batch.RecordCount && scanner.MoveNext(out var r); i++)
            {
                var offset = batch.BaseOffset + r.OffsetDelta;
                if (batch.BaseTimestamp + r.TimestampDelta >= timestamp && offset >= log.LogStartOffset)
                {
                    return (offset, batch.BaseTimestamp + r.TimestampDelta);
                }
            }
        }
        catch (KafkaProtocolException)
        {
            // Skipped: the caller goes on to the next batch.
        }

        return null;
    }

    /// <summary>
    /// The latest offset is the high watermark: appends not yet durable (acks=1, still lingering
    /// before their fsync) are synced first, so a client sees what it wrote, as it does with Kafka.
    /// </summary>
    public ValueTask<ListOffsetsResponse> HandleAsync(RequestContext context, ListOffsetsRequest request, CancellationToken cancellationToken)
    {
        List<Task>? pending = null;
        foreach (var topic in request.Topics)
        {
            foreach (var p in topic.Partitions)
            {
                if (p.Timestamp == Latest && state.Topics.Find(topic.Name)?.Partition(p.PartitionIndex) is { } known && state.Topics.LogOf(known) is { } log && log.HighWatermark < log.LogEndOffset)
                {
                    log.RequestDurableSoon();
                    (pending ??= []).Add(log.WaitDurableAsync(log.LogEndOffset));
                }
            }
        }

        return pending is null ? ValueTask.FromResult(Handle(context, request)) : WhenDurableAsync(context, request, pending);
    }

    private async ValueTask<ListOffsetsResponse> WhenDurableAsync(RequestContext context, ListOffsetsRequest request, List<Task> pending)
    {
        try
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // A failed fsync: the high watermark stays where it is, and that is the answer.
        }

        return Handle(context, request);
    }

    /// <inheritdoc/>
    public ListOffsetsResponse ErrorResponse(RequestContext context, ListOffsetsRequest request, ErrorCode error) => new()
    {
        Topics = [.. request.Topics.Select(t => new ListOffsetsResponse.ListOffsetsTopicResponse
        {
            Name = t.Name,
            Partitions = [.. t.Partitions.Select(p => new ListOffsetsResponse.ListOffsetsPartitionResponse
            {
                PartitionIndex = p.PartitionIndex, ErrorCode = (short)error, Offset = -1, Timestamp = -1, LeaderEpoch = -1,
            })],
        })],
    };

    /// <summary>The answer from what the logs hold now.</summary>
    public ListOffsetsResponse Handle(RequestContext context, ListOffsetsRequest request)
    {
        var response = new ListOffsetsResponse();
        var readCommitted = request.IsolationLevel == 1;
        foreach (var wanted in request.Topics)
        {
            var topicResponse = new ListOffsetsResponse.ListOffsetsTopicResponse { Name = wanted.Name };
            response.Topics.Add(topicResponse);
            var topic = state.Topics.Find(wanted.Name);
            var allowed = state.Authorizer.OnTopic(context, AclOperation.Describe, wanted.Name);
            foreach (var p in wanted.Partitions)
            {
                var result = new ListOffsetsResponse.ListOffsetsPartitionResponse { PartitionIndex = p.PartitionIndex };
                topicResponse.Partitions.Add(result);
                if (!allowed)
                {
                    result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                    result.Offset = -1;
                    result.Timestamp = -1;
                    result.LeaderEpoch = -1;
                    continue;
                }
                if (topic?.Partition(p.PartitionIndex) is not { } partition)
                {
                    result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                    continue;
                }

                if (state.Topics.LogOf(ref partition) is not { } log)
                {
                    result.ErrorCode = (short)(partition.IsOffline ? ErrorCode.KafkaStorageError : ErrorCode.UnknownTopicOrPartition);
                    continue;
                }

                var epoch = partition.LeaderEpoch;
                if (p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch != epoch)
                {
                    result.ErrorCode = (short)(p.CurrentLeaderEpoch < epoch ? ErrorCode.FencedLeaderEpoch : ErrorCode.UnknownLeaderEpoch);
                    continue;
                }

                // As Kafka answers: the current epoch for the latest offset, else the epoch the
                // offset found was written in (what a consumer later validates its position with).
                result.LeaderEpoch = epoch;
                var lastStable = readCommitted ? log.LastStableOffset : -1;
                switch (p.Timestamp)
                {
                    case Latest:
                        // READ_COMMITTED: the last stable offset, as Kafka answers (KIP-98).
                        result.Offset = readCommitted ? log.LastStableOffset : log.HighWatermark;
                        break;
                    case Earliest:
                    case EarliestLocal:
                        result.Offset = log.LogStartOffset;
                        break;
                    case LatestTiered:
                        // No tiered storage: nothing has been tiered.
                        result.Offset = -1;
                        break;
                    case MaxTimestamp:
                        if (log.FindMaxTimestamp() is { } max)
                        {
                            result.Offset = max.Offset;
                            result.Timestamp = max.Timestamp;
                        }

                        break;
                    default:
                        if (p.Timestamp < 0)
                        {
                            result.ErrorCode = (short)ErrorCode.InvalidRequest;
                        }
                        else if (FindByTimestamp(log, p.Timestamp) is { } found)
                        {
                            (result.Offset, result.Timestamp) = found;
                        }

                        break;
                }

                // A timestamp lookup that lands on a record a read_committed consumer can't fetch
                // yet finds nothing, as in Kafka (its lastFetchableOffset check).
                if (readCommitted && p.Timestamp is MaxTimestamp or >= 0 && result.Offset >= lastStable)
                {
                    result.Offset = -1;
                    result.Timestamp = -1;
                }

                if (p.Timestamp != Latest)
                {
                    result.LeaderEpoch = result.Offset >= 0 ? log.EpochForOffset(result.Offset) : -1;
                }
            }
        }

        return response;
    }
}
