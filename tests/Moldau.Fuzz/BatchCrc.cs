using System.Buffers.Binary;
using Moldau.Protocol.Records;

namespace Moldau.Fuzz;

/// <summary>
/// Rewrites the CRC of every whole batch in a run of bytes. A fuzzer can't guess a CRC32C, so a
/// target whose code checks CRCs lets the input say (one flag bit) that its batches get correct
/// ones: the mutations then reach the code behind the check, as a client that computes its
/// CRCs over garbage records does.
/// </summary>
internal static class BatchCrc
{
    /// <summary>Fixes the CRC of each batch the declared lengths delimit, up to the first one that doesn't fit.</summary>
    public static void FixAll(Span<byte> bytes)
    {
        var position = 0;
        while (true)
        {
            var rest = bytes[position..];
            var declared = RecordBatch.DeclaredSize(rest);
            if (declared < RecordBatch.HeaderSize || declared > rest.Length)
            {
                return;
            }

            var batch = rest[..(int)declared];
            BinaryPrimitives.WriteUInt32BigEndian(batch[RecordBatch.CrcOffset..], Crc32C.Compute(batch[RecordBatch.AttributesOffset..]));
            position += (int)declared;
        }
    }
}
