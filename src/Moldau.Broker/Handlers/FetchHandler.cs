using System.Buffers;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Handlers;

/// <summary>
/// Fetch v4+: whole stored batches from the batch holding the fetch offset, within
/// partition_max_bytes and max_bytes (the first batch of the first partition with data whole
/// whatever the limits, that of a later partition whole while it fits in max_bytes),
/// waiting up to max_wait_ms for min_bytes. Sessionless: every response carries session id 0,
/// which KIP-227 lets a broker answer to a client asking for a session. read_uncommitted reads
/// up to the high watermark; read_committed (isolation_level 1) up to the last stable offset, with
/// the aborted transactions of the records returned (Kafka's <c>aborted_transactions</c>, from the
/// transaction index), so the consumer can drop them.
/// </summary>
internal sealed class FetchHandler(BrokerState state) : IApiHandler<FetchRequest, FetchReply>
{
    private readonly ReusePool<FetchRequest> _requests = new();
    private readonly ReusePool<FetchReply> _replies = new();

    /// <inheritdoc/>
    public FetchRequest RentRequest() => _requests.Rent();

    /// <inheritdoc/>
    public void Release(FetchRequest request, FetchReply? reply)
    {
        _requests.Return(request);
        if (reply is not null)
        {
            reply.Clear();
            _replies.Return(reply);
        }
    }

    /// <summary>Answered at once when there is data (or nothing to wait for), else when data comes or max_wait_ms passes.</summary>
    public ValueTask<FetchReply> HandleAsync(RequestContext context, FetchRequest request, CancellationToken cancellationToken)
    {
        var reply = _replies.Rent();
        var pending = HandleAsync(context, request, reply.Response, reply.Waits, reply.Rented);
        if (pending.IsCompletedSuccessfully)
        {
            pending.GetAwaiter().GetResult();
            return ValueTask.FromResult(reply);
        }

        return WhenReadyAsync(pending, reply);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<FetchReply> WhenReadyAsync(ValueTask pending, FetchReply reply)
    {
        try
        {
            await pending.ConfigureAwait(false);
            return reply;
        }
        catch
        {
            reply.Clear(); // the buffers read so far go back
            throw;
        }
    }

    /// <inheritdoc/>
    public FetchReply ErrorResponse(RequestContext context, FetchRequest request, ErrorCode error)
    {
        var reply = _replies.Rent();
        var response = reply.Response;
        response.Reset();
        response.ErrorCode = (short)error;
        foreach (var wanted in request.Topics)
        {
            var topicResponse = response.AddResponsesItem();
            topicResponse.Topic = wanted.Topic;
            topicResponse.TopicId = wanted.TopicId;
            foreach (var p in wanted.Partitions)
            {
                var result = topicResponse.AddPartitionsItem();
                result.PartitionIndex = p.Partition;
                result.ErrorCode = (short)error;
                result.HighWatermark = -1;
                result.LastStableOffset = -1;
                result.LogStartOffset = -1;
                result.Records = ReadOnlyMemory<byte>.Empty;
                if (request.IsolationLevel == 0)
                {
                    result.SetAbortedTransactionsToNull();
                }
            }
        }

        return reply;
    }

    /// <summary>
    /// Handles the fetch into <paramref name="response"/> (reset here, reused per request); buffers
    /// rented for records go into <paramref name="rented"/>, to be returned once the response is
    /// encoded. <paramref name="waits"/> is scratch space. Completes synchronously unless it waits
    /// for data.
    /// </summary>
    public async ValueTask HandleAsync(RequestContext context, FetchRequest request, FetchResponse response, List<Task> waits, List<byte[]> rented)
    {
        response.Reset();

        // Moldau never creates fetch sessions, so an incremental fetch names a session it doesn't have.
        if (request.SessionId != 0)
        {
            response.ErrorCode = (short)ErrorCode.FetchSessionIdNotFound;
            return;
        }

        if (request.SessionEpoch is not (-1 or 0))
        {
            response.ErrorCode = (short)ErrorCode.InvalidFetchSessionEpoch;
            return;
        }

        var time = state.Time;
        var deadline = time.GetTimestamp() + (long)(Math.Max(0, request.MaxWaitMs) * (time.TimestampFrequency / 1000.0));
        while (true)
        {
            waits.Clear();
            var (bytes, anyError) = Read(context, request, response, waits, rented);
            var remaining = time.GetElapsedTime(time.GetTimestamp(), deadline);
            if (bytes >= request.MinBytes || anyError || remaining <= TimeSpan.Zero || waits.Count == 0)
            {
                Count(response, context.Version >= 13);

                return;
            }

            // Wait for an append to any partition asked for, or the deadline.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
            var delay = Task.Delay(remaining, time, timeout.Token);
            waits.Add(delay);
            await Task.WhenAny(waits).ConfigureAwait(false);
            await timeout.CancelAsync().ConfigureAwait(false);
            context.CancellationToken.ThrowIfCancellationRequested();
            response.Reset();
        }
    }

    private (long Bytes, bool AnyError) Read(RequestContext context, FetchRequest request, FetchResponse response, List<Task> waits, List<byte[]> rented)
    {
        var byId = context.Version >= 13;
        var budget = (long)(request.MaxBytes > 0 ? request.MaxBytes : int.MaxValue);
        long total = 0;
        var anyError = false;
        foreach (var wanted in request.Topics)
        {
            var topic = byId ? state.Topics.Find(wanted.TopicId) : state.Topics.Find(wanted.Topic);
            var topicResponse = response.AddResponsesItem();
            topicResponse.Topic = wanted.Topic;
            topicResponse.TopicId = wanted.TopicId;
            foreach (var p in wanted.Partitions)
            {
                var result = topicResponse.AddPartitionsItem();
                result.PartitionIndex = p.Partition;
                result.HighWatermark = -1;
                result.LastStableOffset = -1;
                result.LogStartOffset = -1;
                result.Records = ReadOnlyMemory<byte>.Empty;
                if (request.IsolationLevel == 0)
                {
                    result.SetAbortedTransactionsToNull(); // else the empty list Reset left
                }

                // A consumer's fetch and a replica's alike need Read on the topic (Moldau has no
                // followers); a topic id nobody may describe stays unknown.
                var name = topic?.Name ?? wanted.Topic;
                var error = name is not null && !state.Authorizer.Authorize(context, AclOperation.Read, ResourceType.Topic, name)
                    ? (topic is null ? (byId ? ErrorCode.UnknownTopicId : ErrorCode.TopicAuthorizationFailed) : ErrorCode.TopicAuthorizationFailed)
                    : ReadPartition(topic, p, result, ref budget, ref total, waits, byId, rented, request.IsolationLevel);
                result.ErrorCode = (short)error;
                anyError |= error != ErrorCode.None;
            }
        }

        return (total, anyError);
    }

    private ErrorCode ReadPartition(TopicInfo? topic, FetchRequest.FetchPartition p, FetchResponse.PartitionData result, ref long budget, ref long total, List<Task> waits, bool byId, List<byte[]> rented, sbyte isolationLevel)
    {
        if (topic is null)
        {
            return byId ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition;
        }

        if (topic.Partition(p.Partition) is not { } partition)
        {
            return ErrorCode.UnknownTopicOrPartition;
        }

        if (state.Topics.LogOf(ref partition) is not { } log)
        {
            return partition.IsOffline ? ErrorCode.KafkaStorageError : ErrorCode.UnknownTopicOrPartition;
        }

        // KIP-320: a client that read metadata of an older epoch may be reading records a
        // truncation took back; it is fenced and told the current leader and epoch (KIP-951's
        // current_leader, v12+) so it refreshes and validates its position. A newer epoch than
        // ours means this broker is the one behind.
        var epoch = partition.LeaderEpoch;
        if (p.CurrentLeaderEpoch >= 0 && p.CurrentLeaderEpoch != epoch)
        {
            if (p.CurrentLeaderEpoch > epoch)
            {
                return ErrorCode.UnknownLeaderEpoch;
            }

            result.CurrentLeader.LeaderId = state.Options.NodeId;
            result.CurrentLeader.LeaderEpoch = epoch;
            return ErrorCode.FencedLeaderEpoch;
        }

        // Take the append signal before reading, so an append between the read and the wait wakes
        // us. The log signals when the high watermark moves, and the last stable offset moves only
        // with it (a marker turns its transaction stable once it is below the high watermark), so a
        // read_committed fetch waiting at the last stable offset wakes with it too. The last stable
        // offset is read first: it is bounded by the high watermark of its moment, which only grows.
        waits.Add(partition.NextAppend);
        var lastStable = log.LastStableOffset;
        var highWatermark = log.HighWatermark;
        var readCommitted = isolationLevel == 1;
        var limit = readCommitted ? lastStable : highWatermark;
        result.HighWatermark = highWatermark;
        result.LastStableOffset = lastStable;
        result.LogStartOffset = log.LogStartOffset;
        if (p.FetchOffset < log.LogStartOffset || p.FetchOffset > log.LogEndOffset)
        {
            return ErrorCode.OffsetOutOfRange;
        }

        if (p.FetchOffset >= limit)
        {
            // A consumer caught up with what is durable (or stable: a marker not yet durable holds
            // the last stable offset back): appends past it get their fsync now.
            log.RequestDurableSoon();
        }

        if (p.FetchOffset >= limit || budget <= 0)
        {
            return ErrorCode.None;
        }

        var bytesLimit = (int)Math.Min(Math.Max(0, p.PartitionMaxBytes), budget);
        ReadOnlyMemory<byte> records;
        try
        {
            // KIP-74: the first partition with data returns its first batch whole whatever the
            // limits; a later one too when that batch still fits in the response's max_bytes.
            records = log.Read(p.FetchOffset, bytesLimit, wholeFirstBatchUpTo: total == 0 ? long.MaxValue : budget, limit, rented);
            if (readCommitted && records.Length > 0)
            {
                // Those the records returned may hold: marker at or after the fetch offset, start
                // before the end of the last batch (empty, without allocating, for a log without any).
                var aborted = log.AbortedTransactions(p.FetchOffset, EndOf(records.Span));
                for (var i = 0; i < aborted.Count; i++)
                {
                    var item = result.AddAbortedTransactionsItem();
                    item.ProducerId = aborted[i].ProducerId;
                    item.FirstOffset = aborted[i].FirstOffset;
                }
            }
        }
        catch (IOException e)
        {
            if (partition.ReadFailed())
            {
                state.Log.LogError("{Topic}-{Partition}: read failed, answering KAFKA_STORAGE_ERROR: {Error}", topic.Name, partition.Index, e.Message);
            }

            return ErrorCode.KafkaStorageError;
        }

        partition.ReadSucceeded();
        result.Records = records;
        total += records.Length;
        budget -= records.Length;
        return ErrorCode.None;
    }

    // For /metrics, from the response that goes out (a long poll reads more than once; only its
    // last read is sent): per partition one fetch, failed or not, and the bytes and records sent.
    private void Count(FetchResponse response, bool byId)
    {
        foreach (var topicResponse in response.Responses)
        {
            var topic = byId ? state.Topics.Find(topicResponse.TopicId) : state.Topics.Find(topicResponse.Topic);
            if (topic is null)
            {
                continue;
            }

            foreach (var result in topicResponse.Partitions)
            {
                if (topic.Partition(result.PartitionIndex) is not { } partition)
                {
                    continue;
                }

                partition.Host.Traffic.Fetched(result.ErrorCode != 0);
                if (result.Records is not { Length: > 0 } records)
                {
                    continue;
                }

                var messages = 0;
                var span = records.Span;
                while (span.Length >= RecordBatch.HeaderSize)
                {
                    var header = new RecordBatchHeader(span);
                    messages += header.RecordCount;
                    span = span[(int)Math.Min(header.TotalSize, span.Length)..];
                }

                partition.Host.Traffic.Sent(records.Length, messages);
            }
        }
    }

    /// <summary>The offset after the last of the whole batches in <paramref name="records"/>.</summary>
    private static long EndOf(ReadOnlySpan<byte> records)
    {
        var end = -1L;
        while (records.Length >= RecordBatch.HeaderSize)
        {
            var header = new RecordBatchHeader(records);
            end = header.LastOffset + 1;
            records = records[(int)Math.Min(header.TotalSize, records.Length)..];
        }

        return end;
    }
}

/// <summary>What a Fetch request is answered with, kept for the next one: the response and the buffers its records were read into.</summary>
internal sealed class FetchReply : IKafkaMessage
{
    /// <summary>The response body; its records are slices of <see cref="Rented"/>.</summary>
    public FetchResponse Response { get; } = new();

    /// <summary>Scratch: what a long poll waits for.</summary>
    public List<Task> Waits { get; } = [];

    /// <summary>Buffers rented for records, returned once the response is encoded.</summary>
    public List<byte[]> Rented { get; } = [];

    /// <summary>Returns the buffers; the response keeps no slice of them.</summary>
    public void Clear()
    {
        foreach (var buffer in Rented)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        Rented.Clear();
        Waits.Clear();
        foreach (var topic in Response.Responses)
        {
            foreach (var partition in topic.Partitions)
            {
                partition.Records = null;
            }
        }
    }

    /// <inheritdoc/>
    public void Read(ref KafkaReader reader, short version) => Response.Read(ref reader, version);

    /// <inheritdoc/>
    public void Write(ref KafkaWriter writer, short version) => Response.Write(ref writer, version);

    /// <inheritdoc/>
    public int Size(short version) => Response.Size(version);
}
