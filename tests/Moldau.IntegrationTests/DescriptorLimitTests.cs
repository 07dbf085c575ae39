using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;
using Xunit.Abstractions;

namespace Moldau.IntegrationTests;

/// <summary>
/// A broker under a low open-file limit (<c>ulimit -n 512</c>): it says the limit at start-up, and a
/// flood of connections past its descriptors is refused with one line per shortage, not a spin or
/// a crash; once the flood ends it serves a real client again.
/// </summary>
public sealed class DescriptorLimitTests(ITestOutputHelper output)
{
    private const int Limit = 512;
    private const string RefusalLine = "use the descriptors the open-file limit leaves for them";

    private static int Count(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal))
        {
            n++;
        }

        return n;
    }

    private static bool Alive(BrokerProcess broker)
    {
        try
        {
            using var p = Process.GetProcessById(broker.Pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static async Task<List<Socket>> FloodAsync(int port, int count)
    {
        var open = new List<Socket>();
        var attempts = Enumerable.Range(0, count).Select(async _ =>
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            try
            {
                await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), cts.Token);
                return s;
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException)
            {
                s.Dispose();
                return null;
            }
        });
        foreach (var s in await Task.WhenAll(attempts))
        {
            if (s is not null)
            {
                open.Add(s);
            }
        }

        return open;
    }

    [Fact]
    public async Task StartUpLineNamesTheLimitAndTheShares()
    {
        await using var broker = await BrokerProcess.StartAsync(openFilesLimit: Limit);
        output.WriteLine(await broker.WaitForOutputAsync("Moldau started"));
        Assert.Contains($"open-file limit {Limit} (hard {Limit})", broker.Output, StringComparison.Ordinal);
        Assert.Contains("connections (max.connections, from the limit)", broker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AConfiguredFileBudgetLeavesTheRestToConnections()
    {
        // moldau.log.open.files.max 100 of 512: 512 - 100 - 64 reserved = 348 connections.
        await using var broker = await BrokerProcess.StartAsync(
            properties: new Dictionary<string, string> { ["moldau.log.open.files.max"] = "100" },
            openFilesLimit: Limit);
        output.WriteLine(await broker.WaitForOutputAsync("Moldau started"));
        Assert.Contains("up to 100 for partition files", broker.Output, StringComparison.Ordinal);
        Assert.Contains("348 connections (max.connections, from the limit)", broker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFloodPastTheDescriptorsIsRefusedAndTheBrokerKeepsServing()
    {
        // max.connections well above the descriptors: the open-file limit is what refuses.
        await using var broker = await BrokerProcess.StartAsync(
            properties: new Dictionary<string, string> { ["max.connections"] = "100000" },
            openFilesLimit: Limit);

        var flood = await FloodAsync(broker.Port, 2 * Limit);
        output.WriteLine($"{flood.Count} of {2 * Limit} flood connections connected");
        await Task.Delay(TimeSpan.FromSeconds(3)); // the accept loop meets the shortage, backs off
        Assert.True(Alive(broker), broker.Output);
        var refusals = Count(broker.Output, RefusalLine);
        Assert.InRange(refusals, 1, 3); // it happened, and was said once per interval, not per connection

        foreach (var s in flood)
        {
            s.Dispose();
        }

        // A real client produces and fetches once the flood is gone.
        var topic = "after-flood";
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            Acks = Acks.All,
            MessageTimeoutMs = 60_000,
        }).Build())
        {
            var delivered = await producer.ProduceAsync(topic, new Message<Null, string> { Value = "served" });
            Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        }

        using (var consumer = new ConsumerBuilder<Ignore, string>(new ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = "after-flood",
            EnableAutoCommit = false,
        }).Build())
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            var record = consumer.Consume(TimeSpan.FromSeconds(30));
            Assert.NotNull(record);
            Assert.Equal("served", record.Message.Value);
        }

        output.WriteLine(broker.Output);
        Assert.True(Alive(broker), broker.Output);
        Assert.InRange(Count(broker.Output, RefusalLine), 1, 4);
        Assert.True(Count(broker.Output, "accept on PLAINTEXT") <= 4, broker.Output);
        Assert.DoesNotContain("Out of memory", broker.Output, StringComparison.Ordinal);
    }
}
