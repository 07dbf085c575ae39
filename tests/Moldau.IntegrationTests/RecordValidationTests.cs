using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Tests.Shared;
using Xunit.Abstractions;

namespace Moldau.IntegrationTests;

/// <summary>
/// Malformed and inflating batches over real TCP: each is refused with Kafka's code for its
/// partition only, nothing of it is stored, a real consumer still reads the partition to its end,
/// and a decompression bomb leaves the broker's memory where it was.
/// </summary>
public sealed class RecordValidationTests(ITestOutputHelper output)
{
    private const string Topic = "hostile";

    [Fact]
    public async Task HostileBatchesAreRefusedForTheirPartitionOnlyAndThePartitionStaysReadable()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 2, ReplicationFactor = 1 }],
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);

        var sent = new List<string>();
        foreach (var (name, batch, expected) in HostileBatches.All())
        {
            // The hostile batch to partition 0 and a good one to partition 1, in one request.
            var good = Good(sent.Count);
            var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
            {
                Acks = -1,
                TimeoutMs = 5000,
                TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = batch }, new() { Index = 1, Records = good }] }],
            });
            var partitions = response.Responses.Single().PartitionResponses.OrderBy(p => p.Index).ToList();
            Assert.True((short)expected == partitions[0].ErrorCode, $"{name}: error {partitions[0].ErrorCode}, expected {(short)expected}");
            Assert.False(string.IsNullOrEmpty(partitions[0].ErrorMessage), name);
            Assert.True(partitions[1].ErrorCode == 0, $"{name}: the other partition got {partitions[1].ErrorCode}");
            Assert.Equal(sent.Count, partitions[1].BaseOffset);
            sent.Add($"k{sent.Count}:v{sent.Count}");

            // And a good batch to partition 0 right after: the log is whole and takes it.
            var after = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
            {
                Acks = -1,
                TimeoutMs = 5000,
                TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = Good(sent.Count - 1) }] }],
            });
            Assert.Equal((0, (long)sent.Count - 1), (after.Responses.Single().PartitionResponses.Single().ErrorCode, after.Responses.Single().PartitionResponses.Single().BaseOffset));
        }

        // kcat reads both partitions to their ends (-e) and sees exactly the good records.
        var kcat = ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed; scripts/test.sh installs it (apt-get install kcat)");
        foreach (var partition in new[] { "0", "1" })
        {
            var consume = await ExternalTool.RunAsync(kcat, ["-C", "-b", broker.BootstrapServers, "-t", Topic, "-p", partition, "-o", "beginning", "-e", "-q", "-K:"], timeout: TimeSpan.FromSeconds(60));
            Assert.True(consume.ExitCode == 0, consume.Stderr);
            Assert.Equal(string.Concat(sent.Select(s => s + "\n")), consume.Stdout);
        }

        Assert.DoesNotContain("Unhandled exception", broker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AZstdBombLeavesTheBrokersMemoryBounded()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        Assert.Equal(0, (await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = Topic, NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "cleanup.policy", Value = "compact" }] }],
        })).Topics.Single().ErrorCode);
        var bomb = HostileBatches.All().Single(c => c.Name == "zstd bomb: 1 GiB").Batch;

        // Warm up the produce path with a good compressed batch first, so the reading before
        // counts the code and pools a normal produce needs.
        await ProduceAsync(client, RecordBatchBuilder.Build([new([1], new byte[100_000], 1000)], compression: CompressionType.Zstd));
        var before = ResidentBytes(broker.ProcessId);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal((short)ErrorCode.MessageTooLarge, await ProduceAsync(client, bomb));
        }

        var after = ResidentBytes(broker.ProcessId);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"bomb of {bomb.Length} bytes (1 GiB inflated) x5: RSS {before / 1048576.0:F1} MiB before, {after / 1048576.0:F1} MiB after"));

        // Before the limit the first bomb alone grew RSS by gigabytes; now what inflates is read
        // through a 64 KiB window and stops at 64 MiB.
        Assert.True(after - before < 128L << 20, $"RSS grew from {before} to {after} bytes");
    }

    /// <summary>
    /// KIP-467 as Kafka answers it (Produce v8+): a batch refused because of some of its records
    /// names each by its index, with Kafka's messages, and nothing of it is stored.
    /// </summary>
    [Fact]
    public async Task RecordsRefusedOnTheirOwnAreNamedInRecordErrors()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        Assert.Equal(0, (await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics =
            [
                new() { Name = "keys", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "cleanup.policy", Value = "compact" }] },
                new() { Name = "times", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "message.timestamp.before.max.ms", Value = "3600000" }] },
            ],
        })).Topics.Max(t => t.ErrorCode));

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var nullKeys = RecordBatchBuilder.Build([.. Enumerable.Range(0, 5).Select(i => new RecordToWrite(i is 1 or 3 ? null : [(byte)i], [(byte)i], now))]);
        var oldStamp = RecordBatchBuilder.Build([.. Enumerable.Range(0, 5).Select(i => new RecordToWrite([(byte)i], [(byte)i], i == 2 ? now - (2 * 86_400_000L) : now))]);
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData =
            [
                new() { Name = "keys", PartitionData = [new() { Index = 0, Records = nullKeys }] },
                new() { Name = "times", PartitionData = [new() { Index = 0, Records = oldStamp }] },
            ],
        });
        var keys = response.Responses.Single(t => t.Name == "keys").PartitionResponses.Single();
        Assert.Equal((short)ErrorCode.InvalidRecord, keys.ErrorCode);
        Assert.Equal([1, 3], keys.RecordErrors.Select(e => e.BatchIndex));
        Assert.All(keys.RecordErrors, e => Assert.Equal("Compacted topic cannot accept message without key in topic partition keys-0.", e.BatchIndexErrorMessage));
        Assert.StartsWith("One or more records have been rejected due to 2 record errors in total", keys.ErrorMessage, StringComparison.Ordinal);

        var times = response.Responses.Single(t => t.Name == "times").PartitionResponses.Single();
        Assert.Equal((short)ErrorCode.InvalidTimestamp, times.ErrorCode);
        Assert.Equal([2], times.RecordErrors.Select(e => e.BatchIndex));
        Assert.StartsWith($"Timestamp {now - (2 * 86_400_000L)} of message with offset 2 is out of range.", times.RecordErrors.Single().BatchIndexErrorMessage, StringComparison.Ordinal);
        Assert.Equal("One or more records have been rejected due to invalid timestamp", times.ErrorMessage);

        // Nothing of either batch was stored: the next good batch gets offset 0.
        foreach (var topic in new[] { "keys", "times" })
        {
            var good = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
            {
                Acks = -1,
                TimeoutMs = 5000,
                TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = Good(0) }] }],
            });
            Assert.Equal((0, 0L), (good.Responses.Single().PartitionResponses.Single().ErrorCode, good.Responses.Single().PartitionResponses.Single().BaseOffset));
        }
    }

    /// <summary>
    /// Only the broker stamps LogAppendTime: on a LogAppendTime topic a producer's batch claiming
    /// it is refused, each record named, as Kafka's LogValidator does; an ordinary batch is stamped.
    /// </summary>
    [Fact]
    public async Task ABatchClaimingLogAppendTimeIsRefusedRecordByRecord()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        Assert.Equal(0, (await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = "stamped", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "message.timestamp.type", Value = "LogAppendTime" }] }],
        })).Topics.Single().ErrorCode);

        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var claiming = RecordBatchBuilder.Build([.. Enumerable.Range(0, 3).Select(i => new RecordToWrite([(byte)i], [(byte)i], now))]);
        var s = claiming.AsSpan();
        BinaryPrimitives.WriteInt16BigEndian(s[RecordBatch.AttributesOffset..], (short)(BinaryPrimitives.ReadInt16BigEndian(s[RecordBatch.AttributesOffset..]) | 0x08));
        BinaryPrimitives.WriteUInt32BigEndian(s[RecordBatch.CrcOffset..], Crc32C.Compute(s[RecordBatch.AttributesOffset..]));

        ProduceRequest Request(byte[] records) => new() { Acks = -1, TimeoutMs = 5000, TopicData = [new() { Name = "stamped", PartitionData = [new() { Index = 0, Records = records }] }] };
        var refused = (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Request(claiming))).Responses.Single().PartitionResponses.Single();
        Assert.Equal((short)ErrorCode.InvalidTimestamp, refused.ErrorCode);
        Assert.Equal([0, 1, 2], refused.RecordErrors.Select(e => e.BatchIndex));
        Assert.EndsWith("Producer should not set timestamp type to LogAppendTime.", refused.RecordErrors[0].BatchIndexErrorMessage, StringComparison.Ordinal);

        var stamped = (await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, Request(Good(0)))).Responses.Single().PartitionResponses.Single();
        Assert.Equal((short)0, stamped.ErrorCode);
        Assert.Equal(0, stamped.BaseOffset);
        Assert.NotEqual(-1, stamped.LogAppendTimeMs);
    }

    private static async Task<short> ProduceAsync(KafkaTestClient client, byte[] batch)
    {
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        return response.Responses.Single().PartitionResponses.Single().ErrorCode;
    }

    private static byte[] Good(int i) =>
        RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes($"k{i}"), Encoding.UTF8.GetBytes($"v{i}"), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);

    private static long ResidentBytes(int pid)
    {
        var line = File.ReadLines($"/proc/{pid}/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }
}
