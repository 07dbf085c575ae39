using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Moldau.Protocol.Records;

/// <summary>
/// CRC-32C (Castagnoli), the checksum of RecordBatch v2. Uses the CPU's CRC32 instruction
/// (SSE4.2 or ARMv8) eight bytes at a time, with a table for machines without it. On x64, large
/// inputs run three independent streams at once (the instruction's latency is three times its
/// throughput) and join them with GF(2) arithmetic, as zlib's crc32_combine does.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78; // reflected 0x1EDC6F41

    // Below this many bytes one stream is as fast as three plus the joining.
    private const int InterleaveFrom = 8 * 1024;

    private static readonly uint[] Table = BuildTable();

    // X2n[k] is x^(2^k) mod P, reflected.
    private static readonly uint[] X2n = BuildPowers();

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFF, data);

    /// <summary>Continues <paramref name="crc"/> (a value returned by Compute) over more data.</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data) => ~Update(~crc, data);

    private static uint Update(uint crc, ReadOnlySpan<byte> data)
    {
        if (Sse42.X64.IsSupported)
        {
            if (data.Length >= InterleaveFrom)
            {
                crc = UpdateThreeWay(crc, ref data);
            }

            ulong c = crc;
            while (data.Length >= 8)
            {
                c = Sse42.X64.Crc32(c, BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }

            crc = (uint)c;
            foreach (var b in data)
            {
                crc = Sse42.Crc32(crc, b);
            }

            return crc;
        }

        if (Crc32.Arm64.IsSupported)
        {
            while (data.Length >= 8)
            {
                crc = Crc32.Arm64.ComputeCrc32C(crc, BinaryPrimitives.ReadUInt64LittleEndian(data));
                data = data[8..];
            }

            foreach (var b in data)
            {
                crc = Crc32.ComputeCrc32C(crc, b);
            }

            return crc;
        }

        return UpdateSoftware(crc, data);
    }

    // Three equal runs of whole 8-byte words, each with its own register; the first continues
    // crc, the others start at zero and are shifted into place: by linearity,
    // crc(A||B) = crc(A) * x^(8|B|) + crc0(B). Leaves the bytes after the runs in data.
    private static uint UpdateThreeWay(uint crc, ref ReadOnlySpan<byte> data)
    {
        var run = data.Length / 24 * 8;
        ref var a = ref MemoryMarshal.GetReference(data);
        ref var b = ref Unsafe.Add(ref a, run);
        ref var c = ref Unsafe.Add(ref b, run);
        ulong c1 = crc, c2 = 0, c3 = 0;
        for (var i = 0; i < run; i += 8)
        {
            c1 = Sse42.X64.Crc32(c1, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref a, i)));
            c2 = Sse42.X64.Crc32(c2, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref b, i)));
            c3 = Sse42.X64.Crc32(c3, Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref c, i)));
        }

        var shift = PowerOfX8n(run);
        var joined = Multiply(shift, (uint)c1) ^ (uint)c2;
        joined = Multiply(shift, joined) ^ (uint)c3;
        data = data[(3 * run)..];
        return joined;
    }

    // a * b mod P, both reflected.
    private static uint Multiply(uint a, uint b)
    {
        var m = 1u << 31;
        var p = 0u;
        while (true)
        {
            if ((a & m) != 0)
            {
                p ^= b;
                if ((a & (m - 1)) == 0)
                {
                    return p;
                }
            }

            m >>= 1;
            b = (b & 1) != 0 ? (b >> 1) ^ Polynomial : b >> 1;
        }
    }

    // x^(8n) mod P, reflected.
    private static uint PowerOfX8n(long n)
    {
        var p = 1u << 31; // x^0
        var k = 3;
        while (n != 0)
        {
            if ((n & 1) != 0)
            {
                p = Multiply(X2n[k & 31], p);
            }

            n >>= 1;
            k++;
        }

        return p;
    }

    private static uint[] BuildPowers()
    {
        var powers = new uint[32];
        powers[0] = 1u << 30; // x^1
        for (var k = 1; k < 32; k++)
        {
            powers[k] = Multiply(powers[k - 1], powers[k - 1]);
        }

        return powers;
    }

    /// <summary>The table-driven form, used where the CPU has no CRC32 instruction.</summary>
    internal static uint UpdateSoftware(uint crc, ReadOnlySpan<byte> data)
    {
        foreach (var b in data)
        {
            crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }

        return crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++)
            {
                c = (c & 1) != 0 ? (c >> 1) ^ Polynomial : c >> 1;
            }

            table[i] = c;
        }

        return table;
    }
}
