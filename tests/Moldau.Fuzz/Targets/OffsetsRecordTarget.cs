using System.Buffers.Binary;
using Moldau.Coordinator;
using Moldau.Protocol.Coordinator;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// One <c>__consumer_offsets</c> record's key and value through <see cref="OffsetsTopic.Decode"/>:
/// <code>
/// flags       int8    bit 0: the value is null (a tombstone)
/// key_length  uint16
/// key         key_length bytes
/// value       the rest
/// </code>
/// </summary>
internal sealed class OffsetsRecordTarget : FuzzTarget
{
    public override string Name => "offsets-record";

    public override string Description => "OffsetsTopic.Decode of one key and value";

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length < 3)
        {
            return;
        }

        var keyLength = Math.Min(BinaryPrimitives.ReadUInt16BigEndian(input.Span[1..]), input.Length - 3);
        var key = input.Slice(3, keyLength);
        // Not a conditional expression: null would convert through byte[] to an empty, non-null memory.
        ReadOnlyMemory<byte>? value = null;
        if ((input.Span[0] & 1) == 0)
        {
            value = input[(3 + keyLength)..];
        }

        OffsetsTopic.Decode(key, value);
    }

    /// <summary>The encoded form of a key and value, as <see cref="Run"/> reads it.</summary>
    public static byte[] Encode(byte[] key, byte[]? value)
    {
        var bytes = new byte[3 + key.Length + (value?.Length ?? 0)];
        bytes[0] = (byte)(value is null ? 1 : 0);
        BinaryPrimitives.WriteUInt16BigEndian(bytes.AsSpan(1), (ushort)key.Length);
        key.CopyTo(bytes, 3);
        value?.CopyTo(bytes, 3 + key.Length);
        return bytes;
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (var (name, key, value) in OffsetsRecords())
        {
            yield return (name, Encode(key, value));
        }
    }

    /// <summary>Offset commits and group metadata as the coordinator writes them, and their tombstones.</summary>
    public static IEnumerable<(string Name, byte[] Key, byte[]? Value)> OffsetsRecords()
    {
        yield return ("offset-commit", OffsetsTopic.OffsetKey("group-1", "topic", 3), OffsetsTopic.OffsetValue(new CommittedOffset(42, 1, "meta", 1_700_000_000_000)));
        yield return ("offset-tombstone", OffsetsTopic.OffsetKey("group-1", "topic", 3), null);
        var group = new GroupMetadataValue { ProtocolType = "consumer", Generation = 2, Protocol = "range", Leader = "m-1", CurrentStateTimestamp = 1_700_000_000_000 };
        var member = new GroupMetadataValue.MemberMetadata { MemberId = "m-1", ClientId = "c", ClientHost = "/127.0.0.1", RebalanceTimeout = 30000, SessionTimeout = 10000, Subscription = [0, 1, 0, 0, 0, 1, 0, 1, (byte)'t'], Assignment = [0, 1] };
        group.Members.Add(member);
        yield return ("group-metadata", OffsetsTopic.GroupKey("group-1"), OffsetsTopic.GroupValue(group));
        yield return ("group-tombstone", OffsetsTopic.GroupKey("group-1"), null);
    }
}
