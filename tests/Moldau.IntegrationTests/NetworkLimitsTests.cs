using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Xunit.Abstractions;

namespace Moldau.IntegrationTests;

/// <summary>
/// The network limits of a real broker process against real sockets: request memory across all
/// connections (queued.max.request.bytes), connections per address and in total, idle connections
/// and requests that never finish arriving. Each refusal is a closed (or not yet accepted)
/// connection and a log line, and the broker goes on serving everyone else.
/// </summary>
public sealed class NetworkLimitsTests(ITestOutputHelper output)
{
    private const long MiB = 1024 * 1024;

    private static long ResidentBytes(int pid)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.AsSpan(6).Trim().TrimEnd("kB").Trim(), CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("no VmRSS");
    }

    private static async Task ProduceOneAsync(BrokerProcess broker, string topic)
    {
        using var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            Acks = Acks.All,
            MessageTimeoutMs = 60_000,
        }).Build();
        var delivered = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "still served" });
        Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
    }

    // Waits (bounded) for a condition that the broker reaches on its own, e.g. after it notices a close.
    private static async Task<bool> EventuallyAsync(Func<bool> condition, TimeSpan within)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(100);
        }

        return true;
    }

    private static async Task<KafkaTestClient> ServedClientAsync(BrokerProcess broker)
    {
        // The start-up probe's connection may still be counted for a moment: retry until served.
        for (var attempt = 0; ; attempt++)
        {
            var client = await KafkaTestClient.ConnectAsync(broker.Port);
            try
            {
                await client.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, 3, 1, new ApiVersionsRequest()));
                if (await client.ReadFrameAsync(TimeSpan.FromSeconds(10)) is not null)
                {
                    return client;
                }
            }
            catch (IOException) when (attempt < 50)
            {
            }

            await client.DisposeAsync();
            if (attempt >= 50)
            {
                throw new InvalidOperationException("never served:\n" + broker.Output);
            }

            await Task.Delay(100);
        }
    }

    private static async Task<bool> IsServedAsync(KafkaTestClient client)
    {
        var versions = await client.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest());
        return versions.ErrorCode == 0;
    }

    [Fact]
    public async Task AbandonedLargeFramesKeepMemoryBoundedAndGiveItBack()
    {
        // Default budget: queued.max.request.bytes = max(256 MiB, socket.request.max.bytes).
        // Only the abandoned frames are tested here, so the receive timeout is taken out of the way.
        const long Budget = 256 * MiB;
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["moldau.request.receive.timeout.ms"] = "600000",
        });
        await ProduceOneAsync(broker, "warm-up");
        var baseline = ResidentBytes(broker.Pid);

        const int Declared = 100_000_000;
        const int Sent = Declared / 100 * 95;
        var chunk = new byte[1024 * 1024];
        new Random(7).NextBytes(chunk);
        long peak = 0;
        var afterClose = new List<long>();
        for (var round = 0; round < 4; round++)
        {
            var sockets = new List<Socket>();
            var sends = new List<Task>();
            for (var c = 0; c < 3; c++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                await s.ConnectAsync(IPAddress.Loopback, broker.Port);
                sockets.Add(s);
                sends.Add(Task.Run(async () =>
                {
                    var size = new byte[4];
                    BinaryPrimitives.WriteInt32BigEndian(size, Declared);
                    await s.SendAsync(size, SocketFlags.None);
                    for (var at = 0; at < Sent; at += chunk.Length)
                    {
                        await s.SendAsync(chunk.AsMemory(0, Math.Min(chunk.Length, Sent - at)), SocketFlags.None);
                    }
                }));
            }

            // Two frames fit in the budget; the third connection's reading is paused, so its send
            // stalls. Once two are in, the broker still serves a real client.
            using (var guard = new CancellationTokenSource(TimeSpan.FromMinutes(3)))
            {
                var pending = sends.ToList();
                while (sends.Count - pending.Count < 2)
                {
                    pending.Remove(await Task.WhenAny(pending).WaitAsync(guard.Token));
                }
            }

            await ProduceOneAsync(broker, "during-round-" + round);
            peak = Math.Max(peak, ResidentBytes(broker.Pid));

            foreach (var s in sockets)
            {
                s.Dispose();
            }

            foreach (var t in sends)
            {
                try
                {
                    await t;
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                }
            }

            // Given back once the connections are gone.
            Assert.True(
                await EventuallyAsync(() => ResidentBytes(broker.Pid) < baseline + (64 * MiB), TimeSpan.FromSeconds(60)),
                $"round {round}: {ResidentBytes(broker.Pid) / MiB} MiB resident after close, baseline {baseline / MiB} MiB");
            afterClose.Add(ResidentBytes(broker.Pid));
        }

        output.WriteLine($"baseline {baseline / MiB} MiB, peak {peak / MiB} MiB, after close {string.Join(", ", afterClose.Select(b => b / MiB))} MiB");
        Assert.True(peak < baseline + Budget + (64 * MiB), $"peak {peak / MiB} MiB, baseline {baseline / MiB} MiB");
        Assert.Contains("queued.max.request.bytes", broker.Output, StringComparison.Ordinal);
        await ProduceOneAsync(broker, "after-rounds");
    }

    [Fact]
    public async Task ConnectionsOverTheLimitForAnAddressAreClosed()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["max.connections.per.ip"] = "1",
            ["max.connections.per.ip.overrides"] = "127.0.0.1:2",
        });
        await using var first = await ServedClientAsync(broker);
        await using var second = await ServedClientAsync(broker);

        await using (var third = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            Assert.True(await third.IsClosedByBrokerAsync(TimeSpan.FromSeconds(30)));
        }

        Assert.True(await IsServedAsync(first));
        Assert.True(await IsServedAsync(second));
        Assert.Contains("max.connections.per.ip", broker.Output, StringComparison.Ordinal);

        // A slot given back is taken again.
        await first.DisposeAsync();
        await using var again = await ServedClientAsync(broker);
        Assert.True(await IsServedAsync(again));
    }

    [Fact]
    public async Task AtMaxConnectionsANewConnectionWaitsUntilOneCloses()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["max.connections"] = "2",
        });
        var first = await ServedClientAsync(broker);
        await using var second = await ServedClientAsync(broker);

        // As in Kafka, the third is not accepted (it waits in the listen backlog) until a slot frees.
        await using var third = await KafkaTestClient.ConnectAsync(broker.Port);
        await third.SendRawAsync(KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, 3, 7, new ApiVersionsRequest()));
        Assert.True(await EventuallyAsync(() => broker.Output.Contains("max.connections (2) open", StringComparison.Ordinal), TimeSpan.FromSeconds(30)), broker.Output);

        await first.DisposeAsync();
        var answer = await third.ReadFrameAsync(TimeSpan.FromSeconds(30));
        Assert.NotNull(answer);
        Assert.Equal(7, BinaryPrimitives.ReadInt32BigEndian(answer));
        Assert.True(await IsServedAsync(second));
    }

    [Fact]
    public async Task IdleConnectionsAreClosed()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["connections.max.idle.ms"] = "300",
        });
        await using var idle = await ServedClientAsync(broker);
        Assert.True(await idle.IsClosedByBrokerAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("connections.max.idle.ms", broker.Output, StringComparison.Ordinal);

        await using var next = await ServedClientAsync(broker);
        Assert.True(await IsServedAsync(next));
    }

    [Fact]
    public async Task ARequestThatNeverFinishesArrivingClosesItsConnection()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>
        {
            ["moldau.request.receive.timeout.ms"] = "300",
        });

        // A small frame cut short, and a large one (its own memory) cut short.
        await using var small = await KafkaTestClient.ConnectAsync(broker.Port);
        var frame = KafkaTestClient.EncodeRequest(ApiKey.ApiVersions, 3, 1, new ApiVersionsRequest());
        await small.SendRawAsync(frame.AsMemory(0, frame.Length - 3));
        await using var large = await KafkaTestClient.ConnectAsync(broker.Port);
        var big = new byte[4 + (1024 * 1024)];
        BinaryPrimitives.WriteInt32BigEndian(big, 8 * 1024 * 1024);
        await large.SendRawAsync(big);

        Assert.True(await small.IsClosedByBrokerAsync(TimeSpan.FromSeconds(30)));
        Assert.True(await large.IsClosedByBrokerAsync(TimeSpan.FromSeconds(30)));
        Assert.Contains("moldau.request.receive.timeout.ms", broker.Output, StringComparison.Ordinal);

        await using var healthy = await ServedClientAsync(broker);
        Assert.True(await IsServedAsync(healthy));
    }
}
