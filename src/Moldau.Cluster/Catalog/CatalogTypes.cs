using Moldau.Protocol;
using Moldau.Storage;

namespace Moldau.Cluster.Catalog;

/// <summary>A partition of a topic, by topic id.</summary>
/// <param name="TopicId">The topic's id.</param>
/// <param name="Partition">The partition index.</param>
public readonly record struct TopicIdPartition(Uuid TopicId, int Partition);

/// <summary>A partition's row in the catalog.</summary>
/// <param name="HighWatermark">The next offset to assign (everything below is committed and readable).</param>
/// <param name="LogStartOffset">The first offset still readable.</param>
/// <param name="LeaderEpoch">The partition's leader epoch (moves when the membership changes).</param>
public readonly record struct PartitionState(long HighWatermark, long LogStartOffset, int LeaderEpoch);

/// <summary>A topic in the catalog.</summary>
/// <param name="TopicId">Its id.</param>
/// <param name="Name">Its name.</param>
/// <param name="PartitionCount">How many partitions it has.</param>
public sealed record TopicInfo(Uuid TopicId, string Name, int PartitionCount);

/// <summary>
/// One record batch of an uploaded object, as the committing broker validated it: where it lies in
/// the object and what the producer state check needs from its header.
/// </summary>
/// <param name="TopicId">The topic's id.</param>
/// <param name="Partition">The partition index.</param>
/// <param name="BytePosition">The batch's first byte in the object.</param>
/// <param name="ByteSize">The batch's size in bytes.</param>
/// <param name="RecordCount">Its lastOffsetDelta + 1: how many offsets it takes.</param>
/// <param name="MaxTimestamp">Its max timestamp.</param>
/// <param name="ProducerId">Its producer id, or -1 when not idempotent.</param>
/// <param name="ProducerEpoch">Its producer epoch, or -1.</param>
/// <param name="BaseSequence">Its base sequence, or -1.</param>
public sealed record BatchToCommit(
    Uuid TopicId,
    int Partition,
    long BytePosition,
    int ByteSize,
    int RecordCount,
    long MaxTimestamp,
    long ProducerId = -1,
    short ProducerEpoch = -1,
    int BaseSequence = -1);

/// <summary>An uploaded object to commit: its unique key and the batches it holds, in buffer order.</summary>
/// <param name="ObjectKey">The object's key in the bucket; unique: committing it again returns the first outcome.</param>
/// <param name="ObjectSize">The object's size in bytes.</param>
/// <param name="Batches">Its batches, in the order they were buffered (per partition, the produce order).</param>
public sealed record ObjectCommit(string ObjectKey, long ObjectSize, IReadOnlyList<BatchToCommit> Batches);

/// <summary>What a commit decided for one batch.</summary>
public enum BatchCommitStatus : short
{
    /// <summary>Offsets were assigned and the batch is readable.</summary>
    Appended = 0,

    /// <summary>The batch repeats one of its producer's last five: it keeps the offsets it had.</summary>
    Duplicate = 1,

    /// <summary>Its sequence does not follow the producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER).</summary>
    OutOfOrderSequence = 2,

    /// <summary>Its producer epoch is older than the producer's current one (INVALID_PRODUCER_EPOCH).</summary>
    InvalidProducerEpoch = 3,

    /// <summary>Its partition is not in the catalog (deleted meanwhile): UNKNOWN_TOPIC_OR_PARTITION.</summary>
    UnknownTopicOrPartition = 4,
}

/// <summary>The outcome of one batch of a commit.</summary>
/// <param name="Status">What happened.</param>
/// <param name="BaseOffset">Its first offset (the original one for a duplicate), or -1 when refused.</param>
/// <param name="LastOffset">Its last offset, or -1 when refused.</param>
/// <param name="LogStartOffset">The partition's log start offset, or -1 when unknown.</param>
public readonly record struct BatchCommitResult(BatchCommitStatus Status, long BaseOffset, long LastOffset, long LogStartOffset)
{
    /// <summary>The same outcome as the single node's storage reports it (for the Produce handler).</summary>
    public AppendResult ToAppendResult() => Status switch
    {
        BatchCommitStatus.Appended => new(AppendStatus.Appended, BaseOffset) { LastOffset = LastOffset, LogStartOffset = LogStartOffset },
        BatchCommitStatus.Duplicate => new(AppendStatus.Duplicate, BaseOffset) { LastOffset = LastOffset, LogStartOffset = LogStartOffset },
        BatchCommitStatus.OutOfOrderSequence => new(AppendStatus.OutOfOrderSequence, -1),
        BatchCommitStatus.InvalidProducerEpoch => new(AppendStatus.InvalidProducerEpoch, -1),
        _ => throw new InvalidOperationException($"{Status} has no AppendStatus: the partition is unknown"),
    };
}

/// <summary>The outcome of a commit.</summary>
/// <param name="Results">One per batch, in the order of <see cref="ObjectCommit.Batches"/>.</param>
/// <param name="AlreadyCommitted">True when the object had been committed before (a retry): the results are the first commit's.</param>
public sealed record CommitResult(IReadOnlyList<BatchCommitResult> Results, bool AlreadyCommitted);

/// <summary>A committed batch, as Fetch needs it to read the bytes.</summary>
/// <param name="BaseOffset">Its first offset (to patch into the batch header on the way out).</param>
/// <param name="LastOffset">Its last offset.</param>
/// <param name="ObjectKey">The object that holds it.</param>
/// <param name="BytePosition">Its first byte in the object.</param>
/// <param name="ByteSize">Its size in bytes.</param>
/// <param name="MaxTimestamp">Its max timestamp.</param>
/// <param name="LeaderEpoch">The partition's leader epoch when it was committed.</param>
/// <param name="ProducerId">Its producer id, or -1.</param>
/// <param name="ProducerEpoch">Its producer epoch, or -1.</param>
/// <param name="BaseSequence">Its base sequence, or -1.</param>
public sealed record StoredBatch(
    long BaseOffset,
    long LastOffset,
    string ObjectKey,
    long BytePosition,
    int ByteSize,
    long MaxTimestamp,
    int LeaderEpoch,
    long ProducerId,
    short ProducerEpoch,
    int BaseSequence);

/// <summary>The batches found for an offset range, with the partition's state in the same snapshot.</summary>
/// <param name="State">The partition's high watermark, log start offset and leader epoch.</param>
/// <param name="Batches">The batches from the one holding the first offset asked for, by offset.</param>
public sealed record PartitionBatches(PartitionState State, IReadOnlyList<StoredBatch> Batches);

/// <summary>A listener a broker advertises.</summary>
/// <param name="Name">The listener's name (PLAINTEXT, ...).</param>
/// <param name="Host">The advertised host.</param>
/// <param name="Port">The advertised port.</param>
/// <param name="SecurityProtocol">Its security protocol.</param>
public sealed record BrokerEndpoint(string Name, string Host, int Port, string SecurityProtocol);

/// <summary>What a broker registers.</summary>
/// <param name="BrokerId">Its node.id.</param>
/// <param name="Incarnation">A random id of this process: the same process re-registering keeps its epoch while its lease lives.</param>
/// <param name="Rack">Its broker.rack, or null.</param>
/// <param name="Listeners">Its advertised listeners.</param>
public sealed record BrokerRegistration(int BrokerId, Guid Incarnation, string? Rack, IReadOnlyList<BrokerEndpoint> Listeners);

/// <summary>A broker's lease: it may commit while the lease lives and its epoch is the registered one.</summary>
/// <param name="BrokerId">The broker's id.</param>
/// <param name="BrokerEpoch">The epoch this registration got (unique, increasing across the cluster).</param>
/// <param name="ExpiresAt">When the lease ends unless renewed (PostgreSQL's clock).</param>
public sealed record BrokerLease(int BrokerId, long BrokerEpoch, DateTimeOffset ExpiresAt);

/// <summary>A live broker, as Metadata lists it.</summary>
/// <param name="Registration">What it registered.</param>
/// <param name="BrokerEpoch">Its epoch.</param>
/// <param name="ExpiresAt">When its lease ends unless renewed.</param>
public sealed record LiveBroker(BrokerRegistration Registration, long BrokerEpoch, DateTimeOffset ExpiresAt);

/// <summary>
/// The broker's lease has expired or another registration replaced it: it must stop committing and
/// register again (as a new incarnation's state).
/// </summary>
public sealed class BrokerFencedException(string message) : Exception(message);

/// <summary>Another live broker holds the id (Kafka's DUPLICATE_BROKER_REGISTRATION).</summary>
public sealed class DuplicateBrokerRegistrationException(string message) : Exception(message);

/// <summary>A topic of that name exists already (TOPIC_ALREADY_EXISTS).</summary>
public sealed class TopicExistsException(string message) : Exception(message);
