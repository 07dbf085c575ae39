using System.Runtime.InteropServices;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Handlers;

/// <summary>
/// Produce: validate each partition's single record batch, give it offsets by rewriting its base
/// offset and leader epoch (the bytes under the CRC stay as the client sent them), and append it.
/// Appends happen synchronously, in request order, before the response is built.
/// </summary>
internal sealed class ProduceHandler(BrokerState state)
{
    /// <summary>
    /// Handles the request into <paramref name="response"/> (reset, reused per request);
    /// <paramref name="anyError"/> tells an acks=0 caller to close the connection, and
    /// <paramref name="durable"/> (empty, acks=all) receives what to wait for before answering.
    /// </summary>
    public void Handle(RequestContext context, ProduceRequest request, ProduceResponse response, List<(ProduceResponse.PartitionProduceResponse Result, Task Durable)> durable, out bool anyError)
    {
        anyError = false;

        // Kafka 4 advertises Produce v0-v2 for old librdkafka but refuses them: they carry the
        // pre-0.11 message format.
        var refuse = context.Version < 3 ? ErrorCode.UnsupportedVersion
            : request.Acks is not (-1 or 0 or 1) ? ErrorCode.InvalidRequiredAcks
            : ErrorCode.None;

        foreach (var topicData in request.TopicData)
        {
            var topicResponse = response.AddResponsesItem();
            topicResponse.Name = topicData.Name;
            // Only the broker writes internal topics (Kafka: "Cannot append to internal topic").
            var topicRefusal = refuse != ErrorCode.None ? refuse
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
                var error = topicRefusal != ErrorCode.None ? topicRefusal : Append(topic, partitionData, result, request.Acks == -1);
                result.ErrorCode = (short)error;
                if (error == ErrorCode.None && request.Acks == -1 && topic?.Partition(partitionData.Index)?.Log is { } log)
                {
                    // acks=all: answered once the batch is fsynced (group commit, see PartitionLog).
                    durable.Add((result, log.WaitDurableAsync(log.LogEndOffset)));
                }

                anyError |= error != ErrorCode.None;
            }
        }
    }

    private ErrorCode Append(TopicInfo? topic, ProduceRequest.PartitionProduceData data, ProduceResponse.PartitionProduceResponse result, bool acksAll)
    {
        if (topic?.Partition(data.Index) is not { } partition)
        {
            return ErrorCode.UnknownTopicOrPartition;
        }

        if (state.Topics.LogOf(partition) is not { } log)
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

        try
        {
            var appended = log.Append(batch, partition.LeaderEpoch, durabilityWanted: acksAll);
            switch (appended.Status)
            {
                case AppendStatus.OutOfOrderSequence:
                    return ErrorCode.OutOfOrderSequenceNumber;
                case AppendStatus.InvalidProducerEpoch:
                    return ErrorCode.InvalidProducerEpoch;
                case AppendStatus.MessageTooLarge:
                    return ErrorCode.MessageTooLarge;
                case AppendStatus.Duplicate:
                    // A retry of a batch already stored: answered with its original offset.
                    result.BaseOffset = appended.BaseOffset;
                    result.LogStartOffset = log.LogStartOffset;
                    return ErrorCode.None;
            }

            result.BaseOffset = appended.BaseOffset;
            result.LogStartOffset = log.LogStartOffset;
            result.LogAppendTimeMs = logAppendTime;
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

        return ErrorCode.None;
    }
}
