using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// Transactions through the other real clients, each with a transactional producer and
/// read_committed consumers (tests/clients/python/confluent_kafka_transactions.py,
/// tests/clients/node/kafkajs_transactions.js): commit and abort over three partitions, an open
/// transaction holding read_committed back, offsets sent to a transaction (committed, and aborted
/// without effect), zombie fencing by a second producer of the same transactional id, and a
/// transaction left open until the coordinator aborts it. Confluent.Kafka's are in <see cref="TransactionTests"/>.
/// </summary>
public sealed class TransactionClientTests(TransactionBroker fixture) : IClassFixture<TransactionBroker>
{
    /// <summary>librdkafka 2.0.2 through Debian's python3-confluent-kafka; send_offsets_to_transaction carries the consumer's group metadata (KIP-447).</summary>
    [Fact]
    public async Task ConfluentKafkaPythonOnLibrdkafka2_0_2()
    {
        Assert.True(File.Exists("/usr/bin/python3"), "Debian's /usr/bin/python3 is required (scripts/test.sh installs python3-confluent-kafka)");
        await ClientMatrix.AssertAsync("/usr/bin/python3", "python/confluent_kafka_transactions.py", fixture.Broker.BootstrapServers, 16, TimeSpan.FromMinutes(3));
    }

    /// <summary>kafkajs 2.2.4; its sendOffsets commits without group metadata (generation -1, no member), as Kafka accepts from older clients.</summary>
    [Fact]
    public async Task Kafkajs()
    {
        var node = ExternalTool.Find("node") ?? throw new InvalidOperationException("node is not installed (scripts/test.sh installs it)");
        Assert.True(Directory.Exists(Path.Combine(ClientMatrix.ClientsDir(), "node", "node_modules", "kafkajs")), "run npm ci in tests/clients/node (scripts/test.sh does)");
        await ClientMatrix.AssertAsync(node, "node/kafkajs_transactions.js", fixture.Broker.BootstrapServers, 16, TimeSpan.FromMinutes(3));
    }
}
