using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>Idempotent produce at the protocol level, the way the Java client drives it (InitProducerId first).</summary>
public sealed class IdempotenceTests
{
    private static byte[] Batch(long pid, short epoch, int sequence, int count) =>
        RecordBatchBuilder.Build(
            Enumerable.Range(0, count).Select(i => new RecordToWrite(null, Encoding.UTF8.GetBytes($"s{sequence + i}"), 1000 + i)).ToList(),
            producerId: pid,
            producerEpoch: epoch,
            baseSequence: sequence);

    private static async Task<(short Error, long Offset)> ProduceAsync(KafkaTestClient client, string topic, byte[] batch)
    {
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 5000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        var p = response.Responses.Single().PartitionResponses.Single();
        return (p.ErrorCode, p.BaseOffset);
    }

    [Fact]
    public async Task RetriesAreNotStoredTwiceGapsAndFencedEpochsAreRefusedAndStateSurvivesARestart()
    {
        await using var broker = await BrokerProcess.StartAsync();
        long pid;
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "idem" }], AllowAutoTopicCreation = true });
            var init = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = null, TransactionTimeoutMs = 60000 });
            Assert.Equal(0, init.ErrorCode);
            pid = init.ProducerId;
            Assert.True(pid >= 0);
            Assert.Equal(0, init.ProducerEpoch);

            Assert.Equal((0, 0L), await ProduceAsync(client, "idem", Batch(pid, 0, 0, 3)));
            Assert.Equal((0, 3L), await ProduceAsync(client, "idem", Batch(pid, 0, 3, 2)));

            // A retry of the first batch: the original offset, nothing stored.
            Assert.Equal((0, 0L), await ProduceAsync(client, "idem", Batch(pid, 0, 0, 3)));

            // A gap: sequence 7 when 5 is next.
            Assert.Equal((short)ErrorCode.OutOfOrderSequenceNumber, (await ProduceAsync(client, "idem", Batch(pid, 0, 7, 1))).Error);

            // KIP-360: the producer bumps its epoch; the old epoch is fenced.
            var bumped = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 4, new InitProducerIdRequest { TransactionalId = null, ProducerId = pid, ProducerEpoch = 0 });
            Assert.Equal((pid, (short)1), (bumped.ProducerId, bumped.ProducerEpoch));
            Assert.Equal((0, 5L), await ProduceAsync(client, "idem", Batch(pid, 1, 0, 1)));
            Assert.Equal((short)ErrorCode.InvalidProducerEpoch, (await ProduceAsync(client, "idem", Batch(pid, 0, 5, 1))).Error);

            // Another producer gets another id.
            var other = await client.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 0, new InitProducerIdRequest { TransactionalId = null });
            Assert.NotEqual(pid, other.ProducerId);
        }

        await broker.KillAsync();
        await broker.RestartAsync();
        await using var after = await KafkaTestClient.ConnectAsync(broker.Port);

        // Producer state is rebuilt from the log: the retry is still recognised.
        Assert.Equal((0, 5L), await ProduceAsync(after, "idem", Batch(pid, 1, 0, 1)));
        Assert.Equal((0, 6L), await ProduceAsync(after, "idem", Batch(pid, 1, 1, 1)));

        // Ids handed out before the crash are never handed out again.
        var fresh = await after.SendAsync<InitProducerIdResponse>(ApiKey.InitProducerId, 5, new InitProducerIdRequest { TransactionalId = null });
        Assert.True(fresh.ProducerId > pid + 1, $"{fresh.ProducerId} after {pid}");
    }
}
