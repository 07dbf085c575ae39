using System.Buffers.Binary;
using System.Net.Sockets;
using Moldau.Broker;
using Moldau.Protocol.Records;

namespace Moldau.Server.Tests;

/// <summary>
/// Frames larger than the receive buffer go straight into their own arrays and are dispatched
/// off the reading loop; mixed with small ones they must still arrive whole, be dispatched in
/// arrival order and be answered in that order.
/// </summary>
public sealed class LargeFrameTests : ListenerTestBase
{
    private readonly RecordingDispatcher _dispatcher;

    public LargeFrameTests()
        : this(new RecordingDispatcher())
    {
    }

    private LargeFrameTests(RecordingDispatcher dispatcher)
        : base(dispatcher, maxFrameBytes: 8 * 1024 * 1024)
    {
        _dispatcher = dispatcher;
    }

    /// <summary>Answers "correlation, CRC32C of the whole frame", and notes the order frames were dispatched in.</summary>
    private sealed class RecordingDispatcher : IRequestDispatcher
    {
        private readonly Lock _lock = new();

        public List<int> Dispatched { get; } = [];

        public async ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession connection, CancellationToken cancellationToken)
        {
            var correlation = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
            lock (_lock)
            {
                Dispatched.Add(correlation);
            }

            var crc = Crc32C.Compute(frame.Span);
            if (correlation % 7 == 0)
            {
                await Task.Delay(5, cancellationToken); // some answers come late
            }

            var response = new byte[12];
            BinaryPrimitives.WriteInt32BigEndian(response, 8);
            BinaryPrimitives.WriteInt32BigEndian(response.AsSpan(4), correlation);
            BinaryPrimitives.WriteUInt32BigEndian(response.AsSpan(8), crc);
            return DispatchResult.Send(response, 12);
        }
    }

    private static byte[] Frame(int correlation, int size, Random random)
    {
        var f = new byte[4 + size];
        random.NextBytes(f);
        BinaryPrimitives.WriteInt32BigEndian(f, size);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(8), correlation);
        return f;
    }

    [Fact]
    public async Task MixedSmallAndLargeFramesArriveWholeAndAreAnsweredInOrder()
    {
        var random = new Random(42);
        int[] sizes = [16, 70_000, 16, 3 * 1024 * 1024 + 17, 16, 16, 65_536 - 4, 65_536 - 3, 1_100_000, 16, 200_000, 16];
        var frames = Enumerable.Range(0, 60).Select(i => Frame(i, sizes[i % sizes.Length], random)).ToList();
        using var s = await ConnectAsync();

        // Sent in uneven pieces that cut frames and size prefixes anywhere, while reading answers.
        var all = frames.SelectMany(f => f).ToArray();
        var sending = Task.Run(async () =>
        {
            for (var at = 0; at < all.Length;)
            {
                var n = Math.Min(all.Length - at, random.Next(1, 300_000));
                at += await s.SendAsync(all.AsMemory(at, n), SocketFlags.None);
            }
        });

        var answer = new byte[12];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var i = 0; i < frames.Count; i++)
        {
            for (var read = 0; read < answer.Length;)
            {
                var n = await s.ReceiveAsync(answer.AsMemory(read), SocketFlags.None, timeout.Token);
                Assert.NotEqual(0, n);
                read += n;
            }

            Assert.Equal(i, BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(4)));
            Assert.Equal(Crc32C.Compute(frames[i].AsSpan(4)), BinaryPrimitives.ReadUInt32BigEndian(answer.AsSpan(8)));
        }

        await sending;
        Assert.Equal(Enumerable.Range(0, frames.Count), _dispatcher.Dispatched);
    }

    [Fact]
    public async Task APeerThatClosesInsideALargeFrameOnlyEndsItsConnection()
    {
        using (var s = await ConnectAsync())
        {
            var frame = Frame(1, 2 * 1024 * 1024, new Random(1));
            await s.SendAsync(frame.AsMemory(0, 1024 * 1024), SocketFlags.None);
        }

        using var next = await ConnectAsync();
        await next.SendAsync(Frame(2, 100_000, new Random(2)), SocketFlags.None);
        var answer = new byte[12];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        for (var read = 0; read < answer.Length;)
        {
            read += await next.ReceiveAsync(answer.AsMemory(read), SocketFlags.None, timeout.Token);
        }

        Assert.Equal(2, BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(4)));
    }
}
