using System.Buffers.Binary;
using System.Net.Sockets;
using Moldau.Broker;

namespace Moldau.Server.Tests;

/// <summary>
/// Large frames with ordering keys go through lanes that may run side by side: each key keeps
/// its order, a frame without a key waits for every frame before it, and responses keep arrival
/// order whatever the lanes did.
/// </summary>
public sealed class OrderingLaneTests : ListenerTestBase
{
    private readonly KeyedDispatcher _dispatcher;

    public OrderingLaneTests()
        : this(new KeyedDispatcher())
    {
    }

    private OrderingLaneTests(KeyedDispatcher dispatcher)
        : base(dispatcher, maxFrameBytes: 1024 * 1024)
    {
        _dispatcher = dispatcher;
    }

    // Frame body: api(2) version(2) correlation(4) key(4; -1 = none) work-ms(4), padding.
    private sealed class KeyedDispatcher : IRequestDispatcher
    {
        private readonly Lock _lock = new();
        private int _running;

        public List<(int Correlation, int Key)> Started { get; } = [];

        public HashSet<int> Finished { get; } = [];

        public List<string> Violations { get; } = [];

        public int MaxRunning { get; private set; }

        public int? OrderingKey(ReadOnlyMemory<byte> frame)
        {
            var key = BinaryPrimitives.ReadInt32BigEndian(frame.Span[8..]);
            return key < 0 ? null : key;
        }

        public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession connection, CancellationToken cancellationToken)
        {
            var correlation = BinaryPrimitives.ReadInt32BigEndian(frame.Span[4..]);
            var key = BinaryPrimitives.ReadInt32BigEndian(frame.Span[8..]);
            var work = BinaryPrimitives.ReadInt32BigEndian(frame.Span[12..]);
            lock (_lock)
            {
                // Every earlier frame of the same key, and for a frame without key every earlier
                // frame, must be done.
                for (var earlier = 0; earlier < correlation; earlier++)
                {
                    var earlierKey = EarlierKey(earlier);
                    if ((key < 0 || earlierKey == key || earlierKey < 0) && !Finished.Contains(earlier))
                    {
                        Violations.Add($"{correlation} (key {key}) started before {earlier} (key {earlierKey}) finished");
                    }
                }

                Started.Add((correlation, key));
                MaxRunning = Math.Max(MaxRunning, ++_running);
            }

            Thread.Sleep(work); // a synchronous write that waits for the disk
            lock (_lock)
            {
                _running--;
                Finished.Add(correlation);
            }

            var response = new byte[8];
            BinaryPrimitives.WriteInt32BigEndian(response, 4);
            BinaryPrimitives.WriteInt32BigEndian(response.AsSpan(4), correlation);
            return ValueTask.FromResult(DispatchResult.Send(response, 8));
        }
    }

    // Keys: two partitions taking turns, with a keyless request every seventh.
    private static int EarlierKey(int correlation) => correlation % 7 == 6 ? -1 : correlation % 2;

    private static byte[] Frame(int correlation)
    {
        var key = EarlierKey(correlation);
        var size = key < 0 ? 16 : 70_000;
        var f = new byte[4 + size];
        BinaryPrimitives.WriteInt32BigEndian(f, size);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(8), correlation);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(12), key);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(16), key < 0 ? 0 : 15);
        return f;
    }

    [Fact]
    public async Task KeysRunSideBySideKeepingTheirOrderAndKeylessFramesWaitForAll()
    {
        const int count = 40;
        using var s = await ConnectAsync();
        var all = Enumerable.Range(0, count).SelectMany(Frame).ToArray();
        var sending = s.SendAsync(all, SocketFlags.None);

        var answer = new byte[8];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        for (var i = 0; i < count; i++)
        {
            for (var read = 0; read < answer.Length;)
            {
                var n = await s.ReceiveAsync(answer.AsMemory(read), SocketFlags.None, timeout.Token);
                Assert.NotEqual(0, n);
                read += n;
            }

            Assert.Equal(i, BinaryPrimitives.ReadInt32BigEndian(answer.AsSpan(4)));
        }

        await sending;
        Assert.Empty(_dispatcher.Violations);
        Assert.Equal(count, _dispatcher.Started.Count);
        Assert.True(_dispatcher.MaxRunning >= 2, "the two keys never ran at the same time");
    }
}
