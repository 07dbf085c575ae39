using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Protocol.Tests;

/// <summary>CRC-32C: the hardware forms (one stream, three interleaved streams) against the table.</summary>
public sealed class Crc32CTests
{
    [Fact]
    public void TheStandardCheckValue()
    {
        // The catalogue check value of CRC-32C: the CRC of "123456789".
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void EveryLengthAndStartAgreesWithTheTable()
    {
        var random = new Random(7);
        var data = new byte[300_000];
        random.NextBytes(data);
        int[] lengths = [0, 1, 7, 8, 9, 23, 24, 25, 4095, 8 * 1024 - 1, 8 * 1024, 8 * 1024 + 1, 8 * 1024 + 23, 65_536, 100_003, 299_990];
        foreach (var length in lengths)
        {
            foreach (var start in new[] { 0, 1, 3, 8 })
            {
                var span = data.AsSpan(start, Math.Min(length, data.Length - start));
                Assert.Equal(~Crc32C.UpdateSoftware(0xFFFFFFFF, span), Crc32C.Compute(span));
            }
        }

        for (var i = 0; i < 200; i++)
        {
            var span = data.AsSpan(random.Next(0, 100), random.Next(0, 200_000));
            Assert.Equal(~Crc32C.UpdateSoftware(0xFFFFFFFF, span), Crc32C.Compute(span));
        }
    }

    [Fact]
    public void AppendingPiecesEqualsTheWhole()
    {
        var data = new byte[100_000];
        new Random(3).NextBytes(data);
        var crc = Crc32C.Compute(data.AsSpan(0, 33_333));
        crc = Crc32C.Append(crc, data.AsSpan(33_333, 9));
        crc = Crc32C.Append(crc, data.AsSpan(33_342));
        Assert.Equal(Crc32C.Compute(data), crc);
    }
}
