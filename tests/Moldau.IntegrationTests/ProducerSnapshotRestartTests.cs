using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>
/// The producer-state snapshot (Kafka's <c>.snapshot</c> file) across restarts: a log without
/// appends since a clean start keeps its snapshot through the next clean stop (not rewritten), one
/// with appends gets a new one at its log end, and idempotent producer state is whole after each
/// kind of restart, a kill -9 included.
/// </summary>
public sealed class ProducerSnapshotRestartTests
{
    private const string Topic = "snap";
    private static readonly DateTime Marked = new(2001, 1, 1, 0, 0, 0, DateTimeKind.Utc);

    private static byte[] Batch(long pid, int sequence, int count) =>
        RecordBatchBuilder.Build(
            Enumerable.Range(0, count).Select(i => new RecordToWrite(null, Encoding.UTF8.GetBytes($"s{sequence + i}"), 1000 + i)).ToList(),
            producerId: pid,
            producerEpoch: 0,
            baseSequence: sequence);

    private static async Task<(short Error, long Offset)> ProduceAsync(BrokerProcess broker, byte[] batch)
    {
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        var p = response.Responses.Single().PartitionResponses.Single();
        return (p.ErrorCode, p.BaseOffset);
    }

    private static string[] Snapshots(BrokerProcess broker) =>
        [.. Directory.GetFiles(Path.Combine(broker.DataDir, Topic + "-0"), "*.snapshot").Select(Path.GetFileName).Order(StringComparer.Ordinal)!];

    private static string SnapshotPath(BrokerProcess broker, long offset) =>
        Path.Combine(broker.DataDir, Topic + "-0", offset.ToString("D20", System.Globalization.CultureInfo.InvariantCulture) + ".snapshot");

    [Fact]
    public async Task AnUntouchedLogKeepsItsSnapshotAndProducerStateSurvivesCleanRestartsAndAKill()
    {
        await using var broker = await BrokerProcess.StartAsync();
        long pid;
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }], AllowAutoTopicCreation = true });
            var init = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000 });
            Assert.Equal(0, init.ErrorCode);
            pid = init.ProducerId;
        }

        Assert.Equal((0, 0L), await ProduceAsync(broker, Batch(pid, 0, 2)));
        Assert.Equal((0, 2L), await ProduceAsync(broker, Batch(pid, 2, 1)));

        // A clean stop after appends: one snapshot, at the log end.
        Assert.Equal(0, await broker.StopAsync());
        Assert.Equal(["00000000000000000003.snapshot"], Snapshots(broker));
        var kept = SnapshotPath(broker, 3);
        File.SetLastWriteTimeUtc(kept, Marked);
        var content = await File.ReadAllBytesAsync(kept);

        // A clean restart without appends: the log opens (the retry reaches it) and knows the
        // producer's last batch from the snapshot alone; the stop leaves the file as it was.
        await broker.RestartAsync();
        Assert.Equal((0, 2L), await ProduceAsync(broker, Batch(pid, 2, 1)));
        Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await ProduceAsync(broker, Batch(pid, 5, 1))).Error);
        Assert.Equal(0, await broker.StopAsync());
        Assert.Equal(["00000000000000000003.snapshot"], Snapshots(broker));
        Assert.Equal(Marked, File.GetLastWriteTimeUtc(kept));
        Assert.Equal(content, await File.ReadAllBytesAsync(kept));

        // A clean restart, then appends: the stop writes a snapshot at the new log end and removes
        // the old one; the state after the next clean restart has the new batch.
        await broker.RestartAsync();
        Assert.Equal((0, 2L), await ProduceAsync(broker, Batch(pid, 2, 1)));
        Assert.Equal((0, 3L), await ProduceAsync(broker, Batch(pid, 3, 2)));
        Assert.Equal(0, await broker.StopAsync());
        Assert.Equal(["00000000000000000005.snapshot"], Snapshots(broker));
        await broker.RestartAsync();
        Assert.Equal((0, 3L), await ProduceAsync(broker, Batch(pid, 3, 2)));
        Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await ProduceAsync(broker, Batch(pid, 7, 1))).Error);

        // Appends after that clean start, then kill -9: no snapshot names an offset past the log
        // end (the kept one is below the new batches), and the restart rebuilds the state from
        // the log, the batches after the snapshot included.
        Assert.Equal((0, 5L), await ProduceAsync(broker, Batch(pid, 5, 1)));
        Assert.Equal((0, 6L), await ProduceAsync(broker, Batch(pid, 6, 1)));
        await broker.KillAsync();
        Assert.All(Snapshots(broker), s => Assert.True(long.Parse(Path.GetFileNameWithoutExtension(s), System.Globalization.CultureInfo.InvariantCulture) <= 7, s));
        await broker.RestartAsync();
        Assert.Equal((0, 6L), await ProduceAsync(broker, Batch(pid, 6, 1)));
        Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await ProduceAsync(broker, Batch(pid, 9, 1))).Error);
        Assert.Equal((0, 7L), await ProduceAsync(broker, Batch(pid, 7, 1)));
        Assert.Equal(0, await broker.StopAsync());
        Assert.Equal(["00000000000000000008.snapshot"], Snapshots(broker));
    }
}
