using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Handlers;

/// <summary>
/// Produce: validate each partition's single record batch, give it offsets by rewriting its base
/// offset and leader epoch (the bytes under the CRC stay as the client sent them), and append it.
/// Each partition's append takes this connection's turn on that partition
/// (<see cref="ConnectionSession.Writes"/>), so pipelined requests append in the order they came
/// even when one has to wait; acks=0 and acks=1 are answered once appended, acks=all once durable.
/// Request and reply objects are reused: a steady stream of produce requests allocates nothing.
/// </summary>
internal sealed class ProduceHandler(BrokerState state) : IApiHandler<ProduceRequest, ProduceReply>
{
    private readonly ReusePool<ProduceRequest> _requests = new();
    private readonly ReusePool<ProduceReply> _replies = new();

    /// <inheritdoc/>
    public ProduceRequest RentRequest() => _requests.Rent();

    /// <inheritdoc/>
    public void Release(ProduceRequest request, ProduceReply? reply)
    {
        // The records are slices of the request frame, which goes back to the connection: a
        // pooled request must not keep it reachable.
        foreach (var topic in request.TopicData)
        {
            foreach (var partition in topic.PartitionData)
            {
                partition.Records = null;
            }
        }

        _requests.Return(request);
        if (reply is not null)
        {
            reply.Durable.Clear();
            _replies.Return(reply);
        }
    }

    /// <inheritdoc/>
    public ValueTask<ProduceReply> HandleAsync(RequestContext context, ProduceRequest request, CancellationToken cancellationToken)
    {
        var reply = _replies.Rent();
        reply.Clear();
        List<DeferredAppend>? deferred = null;
        bool anyError;
        try
        {
            Handle(context, request, reply, ref deferred, out anyError);
        }
        catch
        {
            // Turns taken must be given back, or later requests for those partitions wait forever.
            ExitWhenGranted(context.Session.Writes, deferred, 0);
            throw;
        }

        return deferred is null ? Answer(context, request, reply, anyError) : AppendInTurnAsync(context, request, reply, deferred, anyError);
    }

    /// <inheritdoc/>
    public ProduceReply ErrorResponse(RequestContext context, ProduceRequest request, ErrorCode error)
    {
        var reply = _replies.Rent();
        reply.Clear();
        foreach (var topicData in request.TopicData)
        {
            var topicResponse = reply.Response.AddResponsesItem();
            topicResponse.Name = topicData.Name;
            foreach (var partitionData in topicData.PartitionData)
            {
                var result = topicResponse.AddPartitionResponsesItem();
                result.Index = partitionData.Index;
                result.ErrorCode = (short)error;
                result.BaseOffset = -1;
                result.LogAppendTimeMs = -1;
                result.LogStartOffset = -1;
            }
        }

        if (request.Acks == 0 && context.Version >= 3)
        {
            reply.CloseReason = $"acks=0 produce failed ({error}); closing so the client refreshes its metadata";
        }

        return reply;
    }

    /// <summary>
    /// Appends what it can now into <paramref name="reply"/>; a partition whose turn is not yet
    /// granted goes into <paramref name="deferred"/>. <paramref name="anyError"/> tells an acks=0
    /// request to close the connection.
    /// </summary>
    private void Handle(RequestContext context, ProduceRequest request, ProduceReply reply, ref List<DeferredAppend>? deferred, out bool anyError)
    {
        anyError = false;
        var response = reply.Response;
        var durable = reply.Durable;

        // Kafka 4 advertises Produce v0-v2 for old librdkafka but refuses them: they carry the
        // pre-0.11 message format.
        var refuse = context.Version < 3 ? ErrorCode.UnsupportedVersion
            : request.Acks is not (-1 or 0 or 1) ? ErrorCode.InvalidRequiredAcks
            : request.TransactionalId is { } txn ? (state.Authorizer.Authorize(context, AclOperation.Write, ResourceType.TransactionalId, txn) ? ErrorCode.None : ErrorCode.TransactionalIdAuthorizationFailed)
            : HasTransactionalBatch(request) ? ErrorCode.TransactionalIdAuthorizationFailed // transactional records need a transactional id, as Kafka checks
            : ErrorCode.None;

        foreach (var topicData in request.TopicData)
        {
            var topicResponse = response.AddResponsesItem();
            topicResponse.Name = topicData.Name;
            // Only the broker writes internal topics (Kafka: "Cannot append to internal topic").
            var topicRefusal = refuse != ErrorCode.None ? refuse
                : !state.Authorizer.Authorize(context, AclOperation.Write, ResourceType.Topic, topicData.Name) ? ErrorCode.TopicAuthorizationFailed
                : InternalTopics.IsInternal(topicData.Name) ? ErrorCode.InvalidTopicException
                : ErrorCode.None;
            var topic = topicRefusal == ErrorCode.None ? state.Topics.Find(topicData.Name) : null;
            foreach (var partitionData in topicData.PartitionData)
            {
                var result = topicResponse.AddPartitionResponsesItem();
                result.Index = partitionData.Index;
                result.BaseOffset = -1;
                result.LogAppendTimeMs = -1;
                result.LogStartOffset = -1;
                var waiting = false;
                var error = topicRefusal != ErrorCode.None ? topicRefusal : Append(context, request.TransactionalId, topic, partitionData, result, request.Acks == -1, durable, ref deferred, out waiting);
                if (waiting)
                {
                    continue; // answered once its turn comes
                }

                result.ErrorCode = (short)error;
                Counted(topic?.Partition(partitionData.Index)?.Host, error, partitionData.Records);
                if (error == ErrorCode.None && request.Acks == -1 && topic?.Partition(partitionData.Index) is { } written && state.Topics.LogOf(written) is { } log and not ICommitAssignedLog)
                {
                    // acks=all: answered once the batch is fsynced (group commit, see PartitionLog).
                    durable.Add((result, log.WaitDurableAsync(log.LogEndOffset)));
                }

                anyError |= error != ErrorCode.None;
            }
        }
    }

    /// <summary>The reply once every append is done: nothing (acks=0), at once (acks=1), or once durable (acks=all).</summary>
    private ValueTask<ProduceReply> Answer(RequestContext context, ProduceRequest request, ProduceReply reply, bool anyError)
    {
        if (request.Acks == 0 && context.Version >= 3)
        {
            // acks=0 gets no response; a failure closes the connection so the client refreshes
            // its metadata, as Kafka does.
            if (anyError)
            {
                reply.CloseReason = "acks=0 produce failed; closing so the client refreshes its metadata";
            }
            else
            {
                reply.Silent = true;
            }

            return ValueTask.FromResult(reply);
        }

        return reply.Durable.Count == 0 ? ValueTask.FromResult(reply) : WhenDurableAsync(reply);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ProduceReply> WhenDurableAsync(ProduceReply reply)
    {
        foreach (var (result, task) in reply.Durable)
        {
            try
            {
                await task.ConfigureAwait(false);
                if (task is Task<AppendResult> committed)
                {
                    ReportCommitted(committed, result);
                }
            }
            catch (ObjectDisposedException)
            {
                result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition; // deleted before the commit
                result.BaseOffset = -1;
            }
            catch (IOException e)
            {
                state.Log.LogError("fsync failed; answering KAFKA_STORAGE_ERROR: {Error}", e.Message);
                result.ErrorCode = (short)ErrorCode.KafkaStorageError;
                result.BaseOffset = -1;
            }
        }

        return reply;
    }

    // The appends that had to wait for their turn, in the order their turns were taken.
    private async ValueTask<ProduceReply> AppendInTurnAsync(RequestContext context, ProduceRequest request, ProduceReply reply, List<DeferredAppend> deferred, bool anyError)
    {
        var writes = context.Session.Writes;
        for (var i = 0; i < deferred.Count; i++)
        {
            var d = deferred[i];
            ErrorCode error;
            try
            {
                await d.Turn.ConfigureAwait(false);
                error = Write(d.Log, d.LeaderEpoch, d.Batch.Span, d.Result, d.AcksAll, d.LogAppendTime, d.Check, reply.Durable);
            }
            catch
            {
                writes.Exit(d.Log);
                ExitWhenGranted(writes, deferred, i + 1);
                throw;
            }

            writes.Exit(d.Log);
            d.Result.ErrorCode = (short)error;
            Counted(d.Host, error, d.Batch);
            if (error == ErrorCode.None && d.AcksAll && d.Log is not ICommitAssignedLog)
            {
                reply.Durable.Add((d.Result, d.Log.WaitDurableAsync(d.Log.LogEndOffset)));
            }

            anyError |= error != ErrorCode.None;
        }

        return await Answer(context, request, reply, anyError).ConfigureAwait(false);
    }

    private static void ExitWhenGranted(ProduceSequencer writes, List<DeferredAppend>? deferred, int from)
    {
        for (var i = from; i < (deferred?.Count ?? 0); i++)
        {
            var log = deferred![i].Log;
            _ = deferred[i].Turn.AsTask().ContinueWith(_ => writes.Exit(log), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }
    }

    /// <summary>An append whose turn on its partition was not granted at once.</summary>
    private sealed record DeferredAppend(IPartitionLog Log, int LeaderEpoch, Memory<byte> Batch, ProduceResponse.PartitionProduceResponse Result, bool AcksAll, long LogAppendTime, TransactionCheck? Check, ValueTask Turn, PartitionHost Host);

    // For /metrics: the partition's bytes and records in (one batch per partition from Produce v3 on), or a failed produce.
    private static void Counted(PartitionHost? host, ErrorCode error, ReadOnlyMemory<byte>? records)
    {
        if (host is null)
        {
            return;
        }

        var bytes = records is { } r ? r.Length : 0;
        var messages = bytes >= RecordBatchHeader.Size ? new RecordBatchHeader(records!.Value.Span).RecordCount : 0;
        host.Traffic.Produced(error != ErrorCode.None, bytes, messages);
    }

    /// <summary>A transactional batch's check against its transaction (KIP-890 part 1), made under the partition's transactional lock just before the append.</summary>
    private sealed record TransactionCheck(string TransactionalId, string Topic, int Partition, short Version);

    private static bool HasTransactionalBatch(ProduceRequest request)
    {
        foreach (var topic in request.TopicData)
        {
            foreach (var partition in topic.PartitionData)
            {
                if (partition.Records is { Length: >= RecordBatchHeader.Size } records && new RecordBatchHeader(records.Span) is { Magic: 2, IsTransactional: true })
                {
                    return true;
                }
            }
        }

        return false;
    }

    private ErrorCode Append(RequestContext context, string? transactionalId, TopicInfo? topic, ProduceRequest.PartitionProduceData data, ProduceResponse.PartitionProduceResponse result, bool acksAll, List<(ProduceResponse.PartitionProduceResponse, Task)> durable, ref List<DeferredAppend>? deferred, out bool waiting)
    {
        var writes = context.Session.Writes;
        waiting = false;
        if (topic?.Partition(data.Index) is not { } partition)
        {
            return ErrorCode.UnknownTopicOrPartition;
        }

        if (state.Topics.LogOf(ref partition) is not { } log)
        {
            return partition.IsOffline ? ErrorCode.KafkaStorageError : ErrorCode.UnknownTopicOrPartition;
        }

        if (data.Records is not { } records)
        {
            return ErrorCode.InvalidRecord;
        }

        // The topic's configs, typed, as its log holds them (Configuration/ConfigResolver; a
        // config change replaces them at once): max.message.bytes, min.insync.replicas, the
        // record checks. Re-compression into compression.type happens in the log's append.
        var settings = log.Options;
        if (records.Length > settings.MaxMessageBytes)
        {
            return ErrorCode.MessageTooLarge;
        }

        if (acksAll && settings.MinInSyncReplicas > partition.Isr.Count)
        {
            return ErrorCode.NotEnoughReplicas;
        }

        // Every record is checked before anything is written (compressed ones as they inflate):
        // a batch the log would store but consumers could not read poisons the partition.
        var checks = new RecordChecks(partition.Topic.Name, partition.Index, RequireKeys: settings.Compact, LogAppendTimeTopic: settings.LogAppendTime);
        if (!settings.LogAppendTime)
        {
            checks = checks with
            {
                NowMs = state.Time.GetUtcNow().ToUnixTimeMilliseconds(),
                TimestampBeforeMaxMs = settings.TimestampBeforeMaxMs,
                TimestampAfterMaxMs = settings.TimestampAfterMaxMs,
            };
        }

        var validation = RecordBatchValidator.Validate(records, checks);
        if (validation.Error != ErrorCode.None)
        {
            result.ErrorMessage = validation.Message;
            foreach (var recordError in validation.RecordErrors ?? [])
            {
                var item = result.AddRecordErrorsItem();
                item.BatchIndex = recordError.BatchIndex;
                item.BatchIndexErrorMessage = recordError.Message;
            }

            return validation.Error;
        }

        // The request buffer belongs to this request until its response is written; the batch
        // is rewritten in place (base offset, leader epoch) rather than copied.
        var batch = MemoryMarshal.AsMemory(records).Span;
        var logAppendTime = -1L;
        if (settings.LogAppendTime)
        {
            // The one rewrite beyond base offset and leader epoch: timestamp type and max
            // timestamp, which the CRC covers, so the CRC is computed again.
            logAppendTime = state.Time.GetUtcNow().ToUnixTimeMilliseconds();
            var header = new MutableRecordBatchHeader(batch);
            header.TimestampType = Protocol.Records.TimestampType.LogAppendTime;
            header.MaxTimestamp = logAppendTime;
            header.UpdateCrc();
        }

        // A transactional batch is appended only to a partition of its producer's open
        // transaction (transaction.partition.verification.enable).
        var check = transactionalId is not null && state.VerifyTransactionalPartitions && new RecordBatchHeader(batch).IsTransactional
            ? new TransactionCheck(transactionalId, partition.Topic.Name, partition.Index, context.Version)
            : null;

        // This connection's turn on the partition: granted at once unless an earlier request's
        // append to it is still under way.
        var turn = writes.Enter(log);
        if (!turn.IsCompletedSuccessfully)
        {
            (deferred ??= []).Add(new DeferredAppend(log, partition.LeaderEpoch, MemoryMarshal.AsMemory(records), result, acksAll, logAppendTime, check, turn, partition.Host));
            waiting = true;
            return ErrorCode.None;
        }

        try
        {
            return Write(log, partition.LeaderEpoch, batch, result, acksAll, logAppendTime, check, durable);
        }
        finally
        {
            writes.Exit(log);
        }
    }

    private ErrorCode Write(IPartitionLog log, int leaderEpoch, Span<byte> batch, ProduceResponse.PartitionProduceResponse result, bool acksAll, long logAppendTime, TransactionCheck? check, List<(ProduceResponse.PartitionProduceResponse, Task)> durable)
    {
        if (log is ICommitAssignedLog committed)
        {
            // Cluster mode: offsets come from the commit; every acks level waits for it
            // (acks=0 is just not answered). No transactions there yet (docs/cluster.md).
            if (check is not null)
            {
                return ErrorCode.TransactionalIdAuthorizationFailed;
            }

            try
            {
                // Its outcome goes into the result in WhenDurableAsync, once Handle is done with it.
                result.LogAppendTimeMs = logAppendTime;
                durable.Add((result, committed.AppendAsync(batch, leaderEpoch)));
            }
            catch (ObjectDisposedException)
            {
                return ErrorCode.UnknownTopicOrPartition;
            }
            catch (IOException)
            {
                return ErrorCode.KafkaStorageError;
            }

            return ErrorCode.None;
        }

        if (check is null)
        {
            return Write(log, leaderEpoch, batch, result, acksAll, logAppendTime);
        }

        // Checked and appended under the lock the markers take: the transaction cannot end (its
        // marker cannot land) between the check and this append.
        lock (state.TransactionalAppends.LockFor(log))
        {
            var header = new RecordBatchHeader(batch);
            var verified = state.Transactions.VerifyPartition(check.TransactionalId, header.ProducerId, header.ProducerEpoch, check.Topic, check.Partition);
            if (verified != ErrorCode.None)
            {
                return VerificationError(verified, check.Version, result);
            }

            return Write(log, leaderEpoch, batch, result, acksAll, logAppendTime);
        }
    }

    /// <summary>
    /// The coordinator's answer in a Produce response, as Kafka's ReplicaManager words it: not in
    /// the transaction is INVALID_TXN_STATE (TRANSACTION_ABORTABLE from v11, KIP-890), a fenced
    /// epoch INVALID_PRODUCER_EPOCH, and a transaction still ending NOT_ENOUGH_REPLICAS, which
    /// every client retries without a metadata refresh.
    /// </summary>
    private static ErrorCode VerificationError(ErrorCode error, short version, ProduceResponse.PartitionProduceResponse result)
    {
        switch (error)
        {
            case ErrorCode.TransactionAbortable:
                result.ErrorMessage = "Partition was not added to the transaction";
                return version >= 11 ? ErrorCode.TransactionAbortable : ErrorCode.InvalidTxnState;
            case ErrorCode.ProducerFenced:
                return ErrorCode.InvalidProducerEpoch;
            case ErrorCode.ConcurrentTransactions or ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress or ErrorCode.NotCoordinator:
                result.ErrorMessage = $"Unable to verify the partition has been added to the transaction. Underlying error: {error}";
                return ErrorCode.NotEnoughReplicas;
            default:
                return error;
        }
    }

    private static ErrorCode Write(IPartitionLog log, int leaderEpoch, Span<byte> batch, ProduceResponse.PartitionProduceResponse result, bool acksAll, long logAppendTime)
    {
        try
        {
            return Report(log.Append(batch, leaderEpoch, durabilityWanted: acksAll), log, result, logAppendTime);
        }
        catch (ObjectDisposedException)
        {
            return ErrorCode.UnknownTopicOrPartition; // deleted while this request was in flight
        }
        catch (IOException)
        {
            // A full disk or a failing device: logged once by the log's storage-error hook, and
            // retried by the client (KAFKA_STORAGE_ERROR is retriable); the next append tries again.
            return ErrorCode.KafkaStorageError;
        }
    }

    /// <summary>A committed batch's outcome (cluster mode) into its partition's result.</summary>
    private static void ReportCommitted(Task<AppendResult> commit, ProduceResponse.PartitionProduceResponse result)
    {
        var appended = commit.Result;
        result.ErrorCode = (short)Report(appended, null, result, result.LogAppendTimeMs);
        if (appended.Status is AppendStatus.Appended or AppendStatus.Duplicate)
        {
            result.LogStartOffset = appended.LogStartOffset;
        }
        else
        {
            result.LogAppendTimeMs = -1;
        }
    }

    /// <summary>An append's outcome into the partition's result: its offsets, or the error code.</summary>
    private static ErrorCode Report(AppendResult appended, IPartitionLog? log, ProduceResponse.PartitionProduceResponse result, long logAppendTime)
    {
        {
            switch (appended.Status)
            {
                case AppendStatus.OutOfOrderSequence:
                    return ErrorCode.OutOfOrderSequenceNumber;
                case AppendStatus.InvalidProducerEpoch:
                    return ErrorCode.InvalidProducerEpoch;
                case AppendStatus.MessageTooLarge:
                    return ErrorCode.MessageTooLarge;
                case AppendStatus.InvalidTxnState:
                    // A non-transactional batch of a producer whose transaction is open here.
                    return ErrorCode.InvalidTxnState;
                case AppendStatus.TransactionCoordinatorFenced:
                    return ErrorCode.TransactionCoordinatorFenced;
                case AppendStatus.Duplicate:
                    // A retry of a batch already stored: answered with its original offset.
                    result.BaseOffset = appended.BaseOffset;
                    result.LogStartOffset = log?.LogStartOffset ?? -1;
                    return ErrorCode.None;
            }

            result.BaseOffset = appended.BaseOffset;
            result.LogStartOffset = log?.LogStartOffset ?? -1;
            result.LogAppendTimeMs = logAppendTime;
        }

        return ErrorCode.None;
    }
}

/// <summary>What a Produce request is answered with, kept for the next one: the response, and what acks=all waits for.</summary>
internal sealed class ProduceReply : IKafkaMessage, IResponseDirective
{
    /// <summary>The response body.</summary>
    public ProduceResponse Response { get; } = new();

    /// <summary>acks=all: each appended partition's result and the fsync it waits for.</summary>
    public List<(ProduceResponse.PartitionProduceResponse Result, Task Durable)> Durable { get; } = [];

    /// <inheritdoc/>
    public bool Silent { get; set; }

    /// <inheritdoc/>
    public string? CloseReason { get; set; }

    /// <summary>Empties it for the next request.</summary>
    public void Clear()
    {
        Response.Reset();
        Durable.Clear();
        Silent = false;
        CloseReason = null;
    }

    /// <inheritdoc/>
    public void Read(ref KafkaReader reader, short version) => Response.Read(ref reader, version);

    /// <inheritdoc/>
    public void Write(ref KafkaWriter writer, short version) => Response.Write(ref writer, version);

    /// <inheritdoc/>
    public int Size(short version) => Response.Size(version);
}
