using System.Buffers.Binary;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

/// <summary>How the connection reads the size prefix of what it received, before allocating anything.</summary>
public sealed class FrameCuttingTests
{
    private static byte[] Received(int declared, int bodyBytes)
    {
        var bytes = new byte[4 + bodyBytes];
        BinaryPrimitives.WriteInt32BigEndian(bytes, declared);
        return bytes;
    }

    [Theory]
    [InlineData(0, 0, "Complete")]
    [InlineData(10, 10, "Complete")]
    [InlineData(10, 25, "Complete")]
    [InlineData(10, 9, "Incomplete")]
    [InlineData(-1, 0, "Bad")]
    [InlineData(1025, 2000, "Bad")]
    [InlineData(1024, 0, "Large")]
    [InlineData(1020, 1020, "Complete")]
    [InlineData(1021, 1021, "Large")]
    public void ThePrefixDecides(int declared, int bodyBytes, string expected)
    {
        // A 1 KiB receive buffer that takes frames up to 1024 bytes (socket.request.max.bytes).
        Assert.Equal(Enum.Parse<KafkaConnection.FrameState>(expected), KafkaConnection.Cut(Received(declared, bodyBytes), maxFrameBytes: 1024, bufferLength: 1024, out var size));
        Assert.Equal(declared, size);
    }

    [Fact]
    public void FewerThanFourBytesAreNotYetAFrame()
    {
        for (var n = 0; n < 4; n++)
        {
            Assert.Equal(KafkaConnection.FrameState.Incomplete, KafkaConnection.Cut(new byte[n], 1024, 1024, out _));
        }
    }
}
