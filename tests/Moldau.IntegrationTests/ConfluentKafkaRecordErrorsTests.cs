using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// Per-record errors (KIP-467) as an application sees them through Confluent.Kafka 2.16
/// (librdkafka 2.16, Produce v10): when the broker refuses a batch because of some of its records
/// and names them in <c>RecordErrors</c>, librdkafka fails the named records with INVALID_RECORD
/// and the others with its local "invalid different record" error, so the application can send
/// the good ones again. Each batch here is exactly the records produced to partition 0: the
/// producer first delivers one record to partition 1 (so it knows the leader and is connected),
/// linger is long and <c>batch.num.messages</c> is their count, so the batch leaves when the last
/// one is queued.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class ConfluentKafkaRecordErrorsTests(SharedBroker shared)
{
    private const ErrorCode Different = ErrorCode.Local_InvalidDifferentRecord;

    private string Bootstrap => shared.Broker.BootstrapServers;

    [Fact]
    public async Task OnlyTheRecordsWithoutAKeyFailAndTheOthersCanBeSentAgain()
    {
        var topic = await CreateTopicAsync("kip467-keys", "cleanup.policy", "compact");
        var reports = ProduceOneBatch(topic, [.. Enumerable.Range(0, 5).Select(i => new Message<string?, string> { Key = i is 1 or 3 ? null : $"k{i}", Value = $"v{i}" })]);

        Assert.Equal([Different, ErrorCode.InvalidRecord, Different, ErrorCode.InvalidRecord, Different], reports.Select(r => r.Error.Code));
        Assert.All(reports, r => Assert.Equal(PersistenceStatus.NotPersisted, r.Status));
        Assert.Equal(0, HighWatermark(topic));

        // The application's retry: the records that failed only because of the others go through.
        var again = ProduceOneBatch(topic, [.. reports.Where(r => r.Error.Code == Different).Select(r => new Message<string?, string> { Key = r.Message.Key, Value = r.Message.Value })]);
        Assert.Equal([(ErrorCode.NoError, 0L), (ErrorCode.NoError, 1L), (ErrorCode.NoError, 2L)], again.Select(r => (r.Error.Code, r.Offset.Value)));
        Assert.Equal(["k0", "k2", "k4"], Consume(topic, 3).Select(m => m.Key));
    }

    /// <summary>
    /// The broker answers INVALID_TIMESTAMP (32) with the records named; librdkafka fails each
    /// named record with INVALID_RECORD when more than one is named (its choice, the same against
    /// Kafka).
    /// </summary>
    [Fact]
    public async Task OnlyTheRecordsWithTimestampsOutOfRangeFail()
    {
        var topic = await CreateTopicAsync("kip467-times", "message.timestamp.before.max.ms", "3600000");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var reports = ProduceOneBatch(topic, [.. Enumerable.Range(0, 5).Select(i => new Message<string?, string>
        {
            Key = $"k{i}",
            Value = $"v{i}",
            Timestamp = new Timestamp(i is 0 or 4 ? now - (2 * 86_400_000L) : now, TimestampType.CreateTime),
        })]);

        Assert.Equal([ErrorCode.InvalidRecord, Different, Different, Different, ErrorCode.InvalidRecord], reports.Select(r => r.Error.Code));
        Assert.Equal(0, HighWatermark(topic));
    }

    /// <summary>
    /// One bad record fails the whole batch alike in librdkafka 2.16, against Kafka as against
    /// Moldau, although the response names it: rd_kafka_msgbatch_handle_Produce_result marks the
    /// others _INVALID_DIFFERENT_RECORD, then rd_kafka_dr_msgq0 hands the partition's error to
    /// rd_kafka_interceptors_on_acknowledgement_queue as force_err (it passes NO_ERROR only when
    /// record_errors_cnt &gt; 1), which sets it on every message of the batch.
    /// </summary>
    [Fact]
    public async Task ASingleBadRecordFailsItsWholeBatchInLibrdkafka()
    {
        var keys = await CreateTopicAsync("kip467-one-key", "cleanup.policy", "compact");
        var reports = ProduceOneBatch(keys, [.. Enumerable.Range(0, 5).Select(i => new Message<string?, string> { Key = i == 2 ? null : $"k{i}", Value = $"v{i}" })]);
        Assert.All(reports, r => Assert.Equal(ErrorCode.InvalidRecord, r.Error.Code));
        Assert.Equal(0, HighWatermark(keys));

        var times = await CreateTopicAsync("kip467-one-time", "message.timestamp.before.max.ms", "3600000");
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        reports = ProduceOneBatch(times, [.. Enumerable.Range(0, 5).Select(i => new Message<string?, string>
        {
            Key = $"k{i}",
            Value = $"v{i}",
            Timestamp = new Timestamp(i == 2 ? now - (2 * 86_400_000L) : now, TimestampType.CreateTime),
        })]);
        Assert.All(reports, r => Assert.Equal(ErrorCode.InvalidTimestamp, r.Error.Code));
        Assert.Equal(0, HighWatermark(times));
    }

    private async Task<string> CreateTopicAsync(string prefix, string config, string value)
    {
        Librdkafka.EnsureLoaded();
        var topic = prefix + "-" + Guid.NewGuid().ToString("N")[..8];
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Bootstrap }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 2, ReplicationFactor = 1, Configs = new() { [config] = value } }]);
        return topic;
    }

    /// <summary>Produces the messages to partition 0 as one batch; their delivery reports, in order.</summary>
    private List<DeliveryReport<string?, string>> ProduceOneBatch(string topic, IReadOnlyList<Message<string?, string>> messages)
    {
        var reports = new DeliveryReport<string?, string>?[messages.Count];
        using (var producer = new ProducerBuilder<string?, string>(new ProducerConfig
        {
            BootstrapServers = Bootstrap,
            LingerMs = 60_000,
            BatchNumMessages = messages.Count,
        }).Build())
        {
            producer.Produce(new TopicPartition(topic, 1), new Message<string?, string> { Key = "warm-up", Value = "warm-up" });
            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
            for (var i = 0; i < messages.Count; i++)
            {
                var index = i;
                producer.Produce(new TopicPartition(topic, 0), messages[i], r => reports[index] = r);
            }

            Assert.Equal(0, producer.Flush(TimeSpan.FromSeconds(30)));
        }

        return [.. reports.Select(r => r ?? throw new InvalidOperationException("a record got no delivery report"))];
    }

    private long HighWatermark(string topic)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "unused-" + topic }).Build();
        return consumer.QueryWatermarkOffsets(new TopicPartition(topic, 0), TimeSpan.FromSeconds(10)).High.Value;
    }

    private List<Message<string?, string>> Consume(string topic, int count)
    {
        using var consumer = new ConsumerBuilder<string?, string>(new ConsumerConfig { BootstrapServers = Bootstrap, GroupId = "unused-" + topic, EnableAutoCommit = false }).Build();
        consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
        var received = new List<Message<string?, string>>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (received.Count < count && DateTime.UtcNow < deadline)
        {
            if (consumer.Consume(TimeSpan.FromMilliseconds(200))?.Message is { } message)
            {
                received.Add(message);
            }
        }

        return received;
    }
}
