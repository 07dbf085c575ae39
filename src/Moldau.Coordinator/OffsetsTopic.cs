using Microsoft.Extensions.Logging;
using Moldau.Coordinator.Runtime;
using Moldau.Protocol;
using Moldau.Protocol.Coordinator;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Coordinator;

/// <summary>A committed offset.</summary>
/// <param name="Offset">The committed offset.</param>
/// <param name="LeaderEpoch">The leader epoch of the record before it, or -1.</param>
/// <param name="Metadata">The client's metadata string.</param>
/// <param name="CommitTimestamp">When it was committed (ms).</param>
public sealed record CommittedOffset(long Offset, int LeaderEpoch, string Metadata, long CommitTimestamp)
{
    /// <summary>
    /// The offset of the commit's record in <c>__consumer_offsets</c> (-1 when not known): a
    /// transactional commit that commits later replaces a plain one only when its record is newer,
    /// as Kafka orders them.
    /// </summary>
    public long RecordOffset { get; init; } = -1;
}

/// <summary>
/// The records of <c>__consumer_offsets</c>, in Kafka's own format: key and value each start with
/// an int16 version, then the struct from the group-coordinator specs. Key version 0 or 1 is an
/// offset commit (OffsetCommitKey), key version 2 a group's metadata (GroupMetadataKey). A null
/// value is a tombstone.
/// </summary>
public static partial class OffsetsTopic
{
    /// <summary>The topic's name.</summary>
    public const string Name = "__consumer_offsets";

    private const short OffsetKeyVersion = 1;
    private const short OffsetValueVersion = 3;
    private const short GroupKeyVersion = 2;
    private const short GroupValueVersion = 3;

    /// <summary>The partition holding a group's records: abs(Java hashCode of the id) mod partitions, as Kafka picks it.</summary>
    public static int PartitionFor(string groupId, int partitions)
    {
        var h = 0;
        foreach (var c in groupId)
        {
            h = unchecked((31 * h) + c);
        }

        return (h == int.MinValue ? 0 : Math.Abs(h)) % partitions;
    }

    /// <summary>An offset commit record's key.</summary>
    public static byte[] OffsetKey(string group, string topic, int partition) =>
        Versioned(OffsetKeyVersion, new OffsetCommitKey { Group = group, Topic = topic, Partition = partition });

    /// <summary>An offset commit record's value.</summary>
    public static byte[] OffsetValue(CommittedOffset offset) =>
        Versioned(OffsetValueVersion, new OffsetCommitValue { Offset = offset.Offset, LeaderEpoch = offset.LeaderEpoch, Metadata = offset.Metadata, CommitTimestamp = offset.CommitTimestamp });

    /// <summary>A group metadata record's key.</summary>
    public static byte[] GroupKey(string group) => Versioned(GroupKeyVersion, new GroupMetadataKey { Group = group });

    /// <summary>A group metadata record's value.</summary>
    public static byte[] GroupValue(GroupMetadataValue value) => Versioned(GroupValueVersion, value);

    internal static byte[] Versioned(short version, IKafkaMessage message)
    {
        var bytes = new byte[2 + message.Size(version)];
        var writer = new KafkaWriter(bytes);
        writer.WriteInt16(version);
        message.Write(ref writer, version);
        return bytes;
    }

    /// <summary>What replaying one record found.</summary>
    public abstract record Entry;

    /// <summary>An offset commit (or its tombstone when <paramref name="Offset"/> is null).</summary>
    public sealed record OffsetEntry(string Group, string Topic, int Partition, CommittedOffset? Offset) : Entry;

    /// <summary>A group's metadata (or its tombstone when <paramref name="Value"/> is null).</summary>
    public sealed record GroupEntry(string Group, GroupMetadataValue? Value) : Entry;

    /// <summary>Decodes one record; null for keys of other kinds (share groups).</summary>
    public static Entry? Decode(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value)
    {
        var kr = new KafkaReader(key);
        var keyVersion = kr.ReadInt16();
        switch (keyVersion)
        {
            case 0 or 1:
                {
                    var k = new OffsetCommitKey();
                    k.Read(ref kr, keyVersion);
                    if (value is not { } v)
                    {
                        return new OffsetEntry(k.Group, k.Topic, k.Partition, null);
                    }

                    var vr = new KafkaReader(v);
                    var valueVersion = vr.ReadInt16();
                    if (valueVersion is < 0 or > OffsetCommitValue.HighestVersion)
                    {
                        return null;
                    }

                    var o = new OffsetCommitValue();
                    o.Read(ref vr, valueVersion);
                    return new OffsetEntry(k.Group, k.Topic, k.Partition, new CommittedOffset(o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTimestamp));
                }

            case 2:
                {
                    var k = new GroupMetadataKey();
                    k.Read(ref kr, keyVersion);
                    if (value is not { } v)
                    {
                        return new GroupEntry(k.Group, null);
                    }

                    var vr = new KafkaReader(v);
                    var valueVersion = vr.ReadInt16();
                    if (valueVersion is < 0 or > GroupMetadataValue.HighestVersion)
                    {
                        return null;
                    }

                    var g = new GroupMetadataValue();
                    g.Read(ref vr, valueVersion);
                    return new GroupEntry(k.Group, g);
                }

            case >= ConsumerGroupMetadataKeyVersion and <= ConsumerGroupCurrentAssignmentKeyVersion:
                return DecodeConsumerGroup(keyVersion, ref kr, value);

            default:
                return null;
        }
    }

    /// <summary>
    /// Every record of a partition log, in offset order (uncompressed batches; others are skipped).
    /// Replay runs while the broker starts, so bytes that don't decode (a batch whose records run
    /// past its end, a key or value that is not what its version says) never stop it: the rest of
    /// such a batch is skipped with one warning naming the batch, and replay goes on.
    /// </summary>
    public static IReadOnlyList<Entry> Replay(ICoordinatorLog log, ILogger? logger = null)
    {
        var entries = new List<Entry>();
        CoordinatorReplay.Records(
            log,
            (key, value) =>
            {
                if (Decode(key, value) is { } e)
                {
                    entries.Add(e);
                }
            },
            logger,
            Name);
        return entries;
    }

    /// <summary>Every record of a local partition log: <see cref="Replay(ICoordinatorLog, ILogger?)"/>.</summary>
    public static IReadOnlyList<Entry> Replay(IPartitionLog log, ILogger? logger = null) => Replay(new PartitionCoordinatorLog(log), logger);
}
