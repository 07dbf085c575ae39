using System.Buffers.Binary;
using Moldau.Protocol;
using Moldau.Protocol.Records;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Moldau.Tests.Shared;

/// <summary>
/// Record batches a hostile producer can send, each with the error Kafka answers for it. Shared by
/// the validator's unit tests and the integration test that sends them over TCP.
/// </summary>
internal static class HostileBatches
{
    /// <summary>The ~30 KiB zstd batch whose single record inflates to 1 GiB, built once.</summary>
    private static readonly Lazy<byte[]> ZstdBombBatch = new(() => Batch(ZstdBombSection(1L << 30, windowLog: null), 1, 0, CompressionType.Zstd));

    /// <summary>Each malformed shape, named, with the error code the broker must answer.</summary>
    public static IEnumerable<(string Name, byte[] Batch, ErrorCode Expected)> All()
    {
        var good = RecordsSection(Rec(0, "k"u8.ToArray(), "v"u8.ToArray()), Rec(1, "k"u8.ToArray(), "v"u8.ToArray()));
        yield return ("count 2^31-1", Batch(good, int.MaxValue, int.MaxValue - 1), ErrorCode.InvalidRecord);
        yield return ("lying lastOffsetDelta", Batch(good, 2, 5), ErrorCode.InvalidRecord);
        yield return ("offset deltas not 0..n-1", Batch(RecordsSection(Rec(0, [1], [1]), Rec(0, [2], [2])), 2, 1), ErrorCode.InvalidRecord);
        yield return ("fewer records than counted", Batch(good, 3, 2), ErrorCode.InvalidRecord);
        yield return ("bytes after the records", Batch([.. good, 0, 0, 0], 2, 1), ErrorCode.InvalidRecord);
        yield return ("record length past the batch", Batch([.. VarInt(10_000), .. good], 1, 0), ErrorCode.InvalidRecord);
        yield return ("key length past the record", Batch(RecordsSection(RawRecord(0, keyLength: 1000, key: [1, 2], value: [3], headers: [])), 1, 0), ErrorCode.InvalidRecord);
        yield return ("header count lying", Batch(RecordsSection(RawRecord(0, keyLength: 1, key: [1], value: [3], headers: [[.. VarInt(1), 7, .. VarInt(1), 8]], headerCount: 5)), 1, 0), ErrorCode.InvalidRecord);
        yield return ("null header key", Batch(RecordsSection(RawRecord(0, keyLength: 1, key: [1], value: [3], headers: [[.. VarInt(-1), .. VarInt(1), 8]])), 1, 0), ErrorCode.InvalidRecord);
        yield return ("codec 5", Batch(good, 2, 1, (CompressionType)5), ErrorCode.InvalidRecord);
        yield return ("codec 7", Batch(good, 2, 1, (CompressionType)7), ErrorCode.InvalidRecord);
        var garbage = Enumerable.Range(0, 300).Select(i => (byte)(i * 73 + 11)).ToArray();
        foreach (var codec in new[] { CompressionType.Gzip, CompressionType.Snappy, CompressionType.Lz4, CompressionType.Zstd })
        {
            yield return ($"garbage {codec} payload", Batch(garbage, 2, 1, codec), ErrorCode.InvalidRecord);
            var lying = RecordsSection(RawRecord(0, keyLength: 1000, key: [1, 2], value: [3], headers: []));
            yield return ($"{codec} batch with a malformed record inside", Batch(RecordCompression.Compress(codec, lying), 1, 0, codec), ErrorCode.InvalidRecord);
        }

        // snappy: a length preamble past int32 (Snappier throws OverflowException), and one of 1 GiB
        // in a 9-byte block: snappy cannot inflate more than 22 times, so that block is corrupt.
        yield return ("snappy length overflowing int32", Batch([0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0, 0, 0], 1, 0, CompressionType.Snappy), ErrorCode.InvalidRecord);
        yield return ("snappy block claiming 1 GiB", Batch([.. UVarInt(1u << 30), 0, 0, 0, 0], 1, 0, CompressionType.Snappy), ErrorCode.InvalidRecord);

        // lz4: a frame whose flags ask for a dictionary (K4os: NotImplementedException).
        yield return ("lz4 frame with a dictionary id", Batch([0x04, 0x22, 0x4D, 0x18, 0x61, 0x40, 1, 0, 0, 0, 0x99, 0, 0, 0, 0], 1, 0, CompressionType.Lz4), ErrorCode.InvalidRecord);

        yield return ("zstd bomb: 1 GiB", ZstdBombBatch.Value, ErrorCode.MessageTooLarge);
        yield return ("zstd frame asking for a 128 MiB window", Batch(ZstdBombSection(1 << 20, windowLog: 27), 1, 0, CompressionType.Zstd), ErrorCode.MessageTooLarge);
    }

    /// <summary>A well-formed batch of <paramref name="count"/> keyed records with <paramref name="codec"/>, the given keys null.</summary>
    public static byte[] Valid(int count, CompressionType codec = CompressionType.None, params int[] nullKeys) =>
        RecordBatchBuilder.Build(
            [.. Enumerable.Range(0, count).Select(i => new RecordToWrite(nullKeys.Contains(i) ? null : System.Text.Encoding.UTF8.GetBytes($"key-{i}"), System.Text.Encoding.UTF8.GetBytes($"value-{i}"), 1_700_000_000_000 + i))],
            compression: codec);

    /// <summary>A record with offset delta <paramref name="offsetDelta"/>, well formed.</summary>
    public static byte[] Rec(int offsetDelta, byte[] key, byte[] value) =>
        RawRecord(offsetDelta, key.Length, key, value, []);

    /// <summary>A record's bytes with its length prefix, its fields given as they are (so they may lie).</summary>
    public static byte[] RawRecord(int offsetDelta, int keyLength, byte[] key, byte[] value, byte[][] headers, int? headerCount = null)
    {
        byte[] body = [0, .. VarInt(0), .. VarInt(offsetDelta), .. VarInt(keyLength), .. key, .. VarInt(value.Length), .. value, .. VarInt(headerCount ?? headers.Length), .. headers.SelectMany(h => h)];
        return [.. VarInt(body.Length), .. body];
    }

    /// <summary>Records one after another.</summary>
    public static byte[] RecordsSection(params byte[][] records) => [.. records.SelectMany(r => r)];

    /// <summary>A batch around <paramref name="section"/> (already compressed when <paramref name="codec"/> says so), its CRC right.</summary>
    public static byte[] Batch(byte[] section, int count, int lastOffsetDelta, CompressionType codec = CompressionType.None)
    {
        var bytes = new byte[RecordBatch.HeaderSize + section.Length];
        var s = bytes.AsSpan();
        BinaryPrimitives.WriteInt64BigEndian(s, 0);
        BinaryPrimitives.WriteInt32BigEndian(s[8..], bytes.Length - RecordBatch.LogOverhead);
        BinaryPrimitives.WriteInt32BigEndian(s[12..], -1);
        s[16] = 2;
        BinaryPrimitives.WriteInt16BigEndian(s[21..], (short)codec);
        BinaryPrimitives.WriteInt32BigEndian(s[23..], lastOffsetDelta);
        BinaryPrimitives.WriteInt64BigEndian(s[27..], 1_700_000_000_000);
        BinaryPrimitives.WriteInt64BigEndian(s[35..], 1_700_000_000_000);
        BinaryPrimitives.WriteInt64BigEndian(s[43..], -1);
        BinaryPrimitives.WriteInt16BigEndian(s[51..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[53..], -1);
        BinaryPrimitives.WriteInt32BigEndian(s[57..], count);
        section.CopyTo(s[RecordBatch.HeaderSize..]);
        BinaryPrimitives.WriteUInt32BigEndian(s[RecordBatch.CrcOffset..], Crc32C.Compute(s[RecordBatch.AttributesOffset..]));
        return bytes;
    }

    /// <summary>A zstd section of one record whose value is <paramref name="valueBytes"/> zeros, compressed as a stream.</summary>
    public static byte[] ZstdBombSection(long valueBytes, int? windowLog)
    {
        var output = new MemoryStream();
        using (var zstd = new CompressionStream(output, level: 1, leaveOpen: true))
        {
            if (windowLog is { } log)
            {
                zstd.SetParameter(ZSTD_cParameter.ZSTD_c_windowLog, log);
            }

            var tail = VarInt(0);
            byte[] head = [0, .. VarInt(0), .. VarInt(0), .. VarInt(-1), .. VarInt((int)valueBytes)];
            zstd.Write([.. VarInt((int)(head.Length + valueBytes + tail.Length)), .. head]);
            var zeros = new byte[1 << 20];
            for (var left = valueBytes; left > 0; left -= zeros.Length)
            {
                zstd.Write(zeros, 0, (int)Math.Min(left, zeros.Length));
            }

            zstd.Write(tail);
        }

        return output.ToArray();
    }

    /// <summary>A zig-zag varint.</summary>
    public static byte[] VarInt(int value) => UVarInt((uint)((value << 1) ^ (value >> 31)));

    private static byte[] UVarInt(uint value)
    {
        var bytes = new List<byte>();
        while (value >= 0x80)
        {
            bytes.Add((byte)(value | 0x80));
            value >>= 7;
        }

        bytes.Add((byte)value);
        return [.. bytes];
    }
}
