using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// ListOffsets MAX_TIMESTAMP (KIP-734) through Confluent.Kafka's AdminClient.ListOffsetsAsync: the
/// first record holding the largest timestamp, not the last offset of its batch (KAFKA-16310), and
/// -1 / -1 on an empty partition.
/// </summary>
public sealed class MaxTimestampTests
{
    [Fact]
    public async Task MaxTimestampAnswersTheRecordHoldingItAndMinusOneWhenEmpty()
    {
        await using var broker = await BrokerProcess.StartAsync();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = broker.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = "stamps", NumPartitions = 2, ReplicationFactor = 1 }]);

        // One batch of three records: the producer lingers, so all three go in one request.
        using (var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = broker.BootstrapServers, LingerMs = 200 }).Build())
        {
            var sent = new[] { 10000100L, 10000400, 10000250 }
                .Select(t => producer.ProduceAsync(new TopicPartition("stamps", 0), new Message<Null, string> { Value = $"at-{t}", Timestamp = new Timestamp(t, TimestampType.CreateTime) }))
                .ToList();
            var results = await Task.WhenAll(sent);
            Assert.Equal([0L, 1, 2], results.Select(r => r.Offset.Value));
        }

        var answer = await admin.ListOffsetsAsync(
            [
                new TopicPartitionOffsetSpec { TopicPartition = new TopicPartition("stamps", 0), OffsetSpec = OffsetSpec.MaxTimestamp() },
                new TopicPartitionOffsetSpec { TopicPartition = new TopicPartition("stamps", 1), OffsetSpec = OffsetSpec.MaxTimestamp() },
            ]);
        var byPartition = answer.ResultInfos.ToDictionary(i => i.TopicPartitionOffsetError.Partition.Value);
        Assert.Equal((1L, 10000400L), (byPartition[0].TopicPartitionOffsetError.Offset.Value, byPartition[0].Timestamp));
        Assert.Equal((-1L, -1L), (byPartition[1].TopicPartitionOffsetError.Offset.Value, byPartition[1].Timestamp));
    }
}
