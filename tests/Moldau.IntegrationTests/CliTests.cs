using System.Text.Json;
using System.Text.Json.Nodes;
using Confluent.Kafka;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// The admin CLI (<c>moldau topic ...</c>, <c>moldau group ...</c>) run as a process against a
/// real broker process: JSON output parsed here, exit codes checked, a real consumer's offsets.
/// </summary>
public sealed class CliTests : IClassFixture<CliTests.Broker>
{
    private readonly Broker _broker;

    public CliTests(Broker broker) => _broker = broker;

    /// <summary>One broker for the class.</summary>
    public sealed class Broker : IAsyncLifetime
    {
        public BrokerProcess Process { get; private set; } = null!;

        public async Task InitializeAsync() =>
            Process = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["group.initial.rebalance.delay.ms"] = "0" });

        public async Task DisposeAsync() => await Process.DisposeAsync();
    }

    /// <summary>Runs <c>moldau args</c> as a process.</summary>
    internal static Task<ExternalTool.Result> Moldau(IEnumerable<string> args, string? stdin = null) =>
        ExternalTool.RunAsync(BrokerProcess.ServerExecutable(), args, stdin ?? string.Empty, TimeSpan.FromSeconds(60));

    private Task<ExternalTool.Result> CliWithInput(string stdin, params string[] args) => Moldau([.. args, "--bootstrap", _broker.Process.BootstrapServers], stdin);

    private Task<ExternalTool.Result> Cli(params string[] args) => CliWithInput(string.Empty, args);

    private static JsonNode Json(ExternalTool.Result r)
    {
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        return JsonNode.Parse(r.Stdout) ?? throw new InvalidOperationException("no JSON");
    }

    private static string NewTopic() => "cli-" + Guid.NewGuid().ToString("N")[..8];

    [Fact]
    public async Task VersionPrintsTheBinarysVersion()
    {
        var r = await Moldau(["--version"]);
        Assert.Equal(0, r.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+", r.Stdout.Trim());
    }

    [Fact]
    public async Task ATopicIsCreatedDescribedAlteredGrownAndDeleted()
    {
        var topic = NewTopic();
        var created = Json(await Cli("topic", "create", topic, "-p", "2", "--set", "retention.ms=123456", "-o", "json"));
        Assert.Equal("created", created[0]!["status"]!.GetValue<string>());

        // Creating it again: TOPIC_ALREADY_EXISTS, exit code 7; --if-not-exists makes that fine.
        var again = await Cli("topic", "create", topic);
        Assert.Equal(7, again.ExitCode);
        Assert.Contains("TOPIC_ALREADY_EXISTS", again.Stderr);
        Assert.Equal(0, (await Cli("topic", "create", topic, "--if-not-exists")).ExitCode);

        var listed = Json(await Cli("topic", "list", "-o", "json")).AsArray();
        Assert.Contains(listed, t => t!["name"]!.GetValue<string>() == topic && t["partitions"]!.GetValue<int>() == 2);

        var described = Json(await Cli("topic", "describe", topic, "-o", "json"))[0]!;
        Assert.Equal(2, described["partitions"]!.AsArray().Count);
        Assert.Contains(described["configs"]!.AsArray(), c => c!["name"]!.GetValue<string>() == "retention.ms" && c["value"]!.GetValue<string>() == "123456");

        var altered = Json(await Cli("topic", "alter-config", topic, "--set", "cleanup.policy=compact", "--delete", "retention.ms", "-o", "json"));
        Assert.Equal("altered", altered[0]!["status"]!.GetValue<string>());
        var configs = Json(await Cli("configs", "describe", "topic", topic, "-o", "json")).AsArray();
        Assert.Contains(configs, c => c!["name"]!.GetValue<string>() == "cleanup.policy" && c["value"]!.GetValue<string>() == "compact");
        Assert.DoesNotContain(configs, c => c!["name"]!.GetValue<string>() == "retention.ms");

        Assert.Equal(0, (await Cli("topic", "add-partitions", topic, "--num", "3")).ExitCode);
        Assert.Equal(5, Json(await Cli("topic", "describe", topic, "-o", "json"))[0]!["partitions"]!.AsArray().Count);

        var deleted = Json(await Cli("topic", "delete", topic, "-o", "json"));
        Assert.Equal("deleted", deleted[0]!["status"]!.GetValue<string>());
        Assert.DoesNotContain(Json(await Cli("topic", "list", "-o", "json")).AsArray(), t => t!["name"]!.GetValue<string>() == topic);
    }

    [Fact]
    public async Task AnUnknownTopicExitsWithNotFoundAndAnUnreachableBrokerWithItsOwnCode()
    {
        var unknown = await Cli("topic", "describe", "no-such-" + NewTopic());
        Assert.Equal(6, unknown.ExitCode);
        Assert.Contains("UNKNOWN_TOPIC_OR_PARTITION", unknown.Stderr);
        Assert.Equal(6, (await Cli("consume", "no-such-" + NewTopic(), "-n", "1")).ExitCode);

        var unreachable = await Moldau(["topic", "list", "--bootstrap", $"127.0.0.1:{BrokerProcess.FreePort()}"]);
        Assert.Equal(3, unreachable.ExitCode);
        Assert.Contains("cannot connect", unreachable.Stderr);

        var usage = await Cli("topic", "create");
        Assert.Equal(2, usage.ExitCode);
    }

    [Fact]
    public async Task RecordsProducedWithKeysHeadersAndTimestampsAreConsumedAsJson()
    {
        var topic = NewTopic();
        Assert.Equal(0, (await Cli("topic", "create", topic, "-p", "3")).ExitCode);
        var produced = Json(await CliWithInput("k1:v1\nk2:v2\nk3:v3\n", "produce", topic, "--key-separator", ":", "-H", "source=cli", "--timestamp", "2026-01-02T03:04:05Z", "-o", "json")).AsArray();
        Assert.Equal(3, produced.Sum(p => p!["records"]!.GetValue<int>()));
        Assert.Equal(0, (await CliWithInput("{\"key\":\"j\",\"value\":{\"n\":1},\"headers\":{\"h\":\"x\"},\"partition\":1}\n", "produce", topic, "-f", "json")).ExitCode);

        var consumed = await Cli("consume", topic, "--from-beginning", "-n", "4", "-o", "json");
        Assert.Equal(0, consumed.ExitCode);
        var records = consumed.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(4, records.Count);
        var k2 = records.Single(r => r["key"]?.GetValue<string>() == "k2");
        Assert.Equal("v2", k2["value"]!.GetValue<string>());
        Assert.Equal(DateTimeOffset.Parse("2026-01-02T03:04:05Z", System.Globalization.CultureInfo.InvariantCulture).ToUnixTimeMilliseconds(), k2["timestamp"]!.GetValue<long>());
        Assert.Equal("cli", k2["headers"]![0]!["value"]!.GetValue<string>());
        var j = records.Single(r => r["key"]?.GetValue<string>() == "j");
        Assert.Equal((1, "{\"n\":1}", "x"), (j["partition"]!.GetValue<int>(), j["value"]!.GetValue<string>(), j["headers"]![0]!["value"]!.GetValue<string>()));

        // Keys land where Kafka's default partitioner puts them: a Java or librdkafka consumer agrees.
        Librdkafka.EnsureLoaded();
        using var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _broker.Process.BootstrapServers, Partitioner = Partitioner.Murmur2 }).Build();
        var viaClient = await producer.ProduceAsync(topic, new Message<string, string> { Key = "k2", Value = "again" });
        Assert.Equal(k2["partition"]!.GetValue<int>(), viaClient.Partition.Value);

        // From an offset of one partition, until the end.
        var tail = await Cli("consume", topic, "-p", $"{viaClient.Partition.Value}", "--offset", $"{viaClient.Offset.Value}", "-e", "--print-key");
        Assert.Equal("k2\tagain", tail.Stdout.Trim());
    }

    [Fact]
    public async Task AGroupsLagIsDescribedAndItsOffsetsResetWithADryRunThenForReal()
    {
        var topic = NewTopic();
        var group = "g-" + topic;
        Assert.Equal(0, (await Cli("topic", "create", topic, "-p", "2")).ExitCode);
        var lines = string.Concat(Enumerable.Range(0, 10).Select(i => $"k{i}:v{i}\n"));
        Assert.Equal(0, (await CliWithInput(lines, "produce", topic, "--key-separator", ":")).ExitCode);

        // A real consumer reads 4 records and commits what it read.
        Librdkafka.EnsureLoaded();
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = _broker.Process.BootstrapServers,
            GroupId = group,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnableAutoCommit = false,
        }).Build())
        {
            consumer.Subscribe(topic);
            var read = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (read < 4 && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } m)
                {
                    consumer.Commit(m);
                    read++;
                }
            }

            Assert.Equal(4, read);

            // While it is a member, describe names it and reset refuses.
            var live = Json(await Cli("group", "describe", group, "-o", "json"))[0]!;
            Assert.Equal("Stable", live["state"]!.GetValue<string>());
            Assert.Single(live["members"]!.AsArray());
            Assert.All(live["partitions"]!.AsArray(), p => Assert.NotNull(p!["memberId"]));
            Assert.Equal(1, (await Cli("group", "reset", group, "--all-topics", "--to-earliest", "--execute")).ExitCode);
            consumer.Close();
        }

        var described = Json(await Cli("group", "describe", group, "-o", "json"))[0]!;
        var partitions = described["partitions"]!.AsArray();
        // Partitions with a committed offset are listed (as kafka-consumer-groups.sh does once no member owns them).
        Assert.Equal(partitions.Sum(p => p!["logEndOffset"]!.GetValue<long>()) - 4, described["totalLag"]!.GetValue<long>());
        var lagBefore = described["totalLag"]!.GetValue<long>();
        Assert.All(partitions, p => Assert.Equal(p!["logEndOffset"]!.GetValue<long>() - (p["currentOffset"]?.GetValue<long>() ?? 0), p["lag"]!.GetValue<long>()));
        Assert.Contains(Json(await Cli("group", "list", "-o", "json")).AsArray(), g => g!["group"]!.GetValue<string>() == group);

        // Dry run: the plan is shown, nothing is committed.
        var plan = Json(await Cli("group", "reset", group, "--topic", topic, "--to-earliest", "-o", "json"));
        Assert.False(plan["executed"]!.GetValue<bool>());
        Assert.All(plan["partitions"]!.AsArray(), p => Assert.Equal(0, p!["newOffset"]!.GetValue<long>()));
        Assert.Equal(lagBefore, Json(await Cli("group", "describe", group, "-o", "json"))[0]!["totalLag"]!.GetValue<long>());

        // For real: the lag is the whole topic, and a consumer starts from 0.
        var done = Json(await Cli("group", "reset", group, "--topic", topic, "--to-earliest", "--execute", "-o", "json"));
        Assert.True(done["executed"]!.GetValue<bool>());
        Assert.Equal(10, Json(await Cli("group", "describe", group, "-o", "json"))[0]!["totalLag"]!.GetValue<long>());
        using (var check = new ConsumerBuilder<string, string>(new ConsumerConfig { BootstrapServers = _broker.Process.BootstrapServers, GroupId = group }).Build())
        {
            var committed = check.Committed([new TopicPartition(topic, 0), new TopicPartition(topic, 1)], TimeSpan.FromSeconds(10));
            Assert.All(committed, c => Assert.Equal(0, c.Offset.Value));
        }

        // To a time after every record: the end offsets.
        Json(await Cli("group", "reset", group, "--all-topics", "--to-datetime", DateTimeOffset.UtcNow.AddMinutes(1).ToString("O"), "--execute", "-o", "json"));
        Assert.Equal(0, Json(await Cli("group", "describe", group, "-o", "json"))[0]!["totalLag"]!.GetValue<long>());

        Assert.Equal(0, (await Cli("group", "delete", group)).ExitCode);
        Assert.Equal(6, (await Cli("group", "describe", group)).ExitCode);
    }

    [Fact]
    public async Task ClusterInfoAndCompletionWork()
    {
        var info = Json(await Cli("cluster", "info", "-o", "json"));
        Assert.False(string.IsNullOrEmpty(info["clusterId"]!.GetValue<string>()));
        Assert.Equal(_broker.Process.Port, info["brokers"]![0]!["port"]!.GetValue<int>());

        var script = await Moldau(["completion", "bash"]);
        Assert.Contains("complete -o default -F _moldau_complete moldau", script.Stdout);
        var suggestions = await Moldau(["[suggest:13]", "moldau topic "]);
        Assert.Contains("describe", suggestions.Stdout.Split('\n', StringSplitOptions.TrimEntries));
    }
}
