using Moldau.Protocol;
using Moldau.Protocol.Coordinator;

namespace Moldau.Coordinator;

/// <summary>
/// The records of consumer-protocol groups (KIP-848) in <c>__consumer_offsets</c>, in Kafka's
/// format: the key's int16 version names the record (3 group metadata, 4 partition metadata, 5
/// member metadata, 6 target assignment metadata, 7 a member's target assignment, 8 a member's
/// current assignment), the value's int16 version is 0. Every key is per group or per (group,
/// member), so compaction keeps the last of each and a tombstone removes it.
/// </summary>
public static partial class OffsetsTopic
{
    internal const short ConsumerGroupMetadataKeyVersion = 3;
    internal const short ConsumerGroupPartitionMetadataKeyVersion = 4;
    internal const short ConsumerGroupMemberMetadataKeyVersion = 5;
    internal const short ConsumerGroupTargetMetadataKeyVersion = 6;
    internal const short ConsumerGroupTargetMemberKeyVersion = 7;
    internal const short ConsumerGroupCurrentAssignmentKeyVersion = 8;

    /// <summary>A consumer-group record: its key version, group, member (for per-member keys) and decoded value (null: a tombstone).</summary>
    public sealed record ConsumerGroupEntry(short KeyVersion, string Group, string? Member, IKafkaMessage? Value) : Entry;

    internal static byte[] ConsumerGroupKey(short keyVersion, string group, string? member = null) => keyVersion switch
    {
        ConsumerGroupMetadataKeyVersion => Versioned(keyVersion, new ConsumerGroupMetadataKey { GroupId = group }),
        ConsumerGroupPartitionMetadataKeyVersion => Versioned(keyVersion, new ConsumerGroupPartitionMetadataKey { GroupId = group }),
        ConsumerGroupMemberMetadataKeyVersion => Versioned(keyVersion, new ConsumerGroupMemberMetadataKey { GroupId = group, MemberId = member! }),
        ConsumerGroupTargetMetadataKeyVersion => Versioned(keyVersion, new ConsumerGroupTargetAssignmentMetadataKey { GroupId = group }),
        ConsumerGroupTargetMemberKeyVersion => Versioned(keyVersion, new ConsumerGroupTargetAssignmentMemberKey { GroupId = group, MemberId = member! }),
        ConsumerGroupCurrentAssignmentKeyVersion => Versioned(keyVersion, new ConsumerGroupCurrentMemberAssignmentKey { GroupId = group, MemberId = member! }),
        _ => throw new ArgumentOutOfRangeException(nameof(keyVersion)),
    };

    internal static byte[] ConsumerGroupValue(IKafkaMessage value) => Versioned(0, value);

    private static Entry? DecodeConsumerGroup(short keyVersion, ref KafkaReader kr, ReadOnlyMemory<byte>? value)
    {
        string group;
        string? member = null;
        IKafkaMessage? decoded;
        switch (keyVersion)
        {
            case ConsumerGroupMetadataKeyVersion:
                {
                    var k = new ConsumerGroupMetadataKey();
                    k.Read(ref kr, keyVersion);
                    group = k.GroupId;
                    decoded = new ConsumerGroupMetadataValue();
                    break;
                }

            case ConsumerGroupPartitionMetadataKeyVersion:
                {
                    var k = new ConsumerGroupPartitionMetadataKey();
                    k.Read(ref kr, keyVersion);
                    group = k.GroupId;
                    decoded = new ConsumerGroupPartitionMetadataValue();
                    break;
                }

            case ConsumerGroupMemberMetadataKeyVersion:
                {
                    var k = new ConsumerGroupMemberMetadataKey();
                    k.Read(ref kr, keyVersion);
                    (group, member) = (k.GroupId, k.MemberId);
                    decoded = new ConsumerGroupMemberMetadataValue();
                    break;
                }

            case ConsumerGroupTargetMetadataKeyVersion:
                {
                    var k = new ConsumerGroupTargetAssignmentMetadataKey();
                    k.Read(ref kr, keyVersion);
                    group = k.GroupId;
                    decoded = new ConsumerGroupTargetAssignmentMetadataValue();
                    break;
                }

            case ConsumerGroupTargetMemberKeyVersion:
                {
                    var k = new ConsumerGroupTargetAssignmentMemberKey();
                    k.Read(ref kr, keyVersion);
                    (group, member) = (k.GroupId, k.MemberId);
                    decoded = new ConsumerGroupTargetAssignmentMemberValue();
                    break;
                }

            default:
                {
                    var k = new ConsumerGroupCurrentMemberAssignmentKey();
                    k.Read(ref kr, keyVersion);
                    (group, member) = (k.GroupId, k.MemberId);
                    decoded = new ConsumerGroupCurrentMemberAssignmentValue();
                    break;
                }
        }

        if (value is not { } v)
        {
            return new ConsumerGroupEntry(keyVersion, group, member, null);
        }

        var vr = new KafkaReader(v);
        var valueVersion = vr.ReadInt16();
        if (valueVersion != 0)
        {
            return null;
        }

        decoded.Read(ref vr, valueVersion);
        return new ConsumerGroupEntry(keyVersion, group, member, decoded);
    }
}
