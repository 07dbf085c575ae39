using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>
/// The HTTP listener of a real broker process (moldau.http.listeners): /metrics after real
/// clients produced, consumed and committed, parsed as the Prometheus text format; the health
/// endpoints; and hostile HTTP clients that must not disturb the Kafka listener.
/// </summary>
public sealed class MetricsTests : IAsyncLifetime
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(30) };
    private readonly int _httpPort = BrokerProcess.FreePort();
    private BrokerProcess _broker = null!;

    private string Url => $"http://127.0.0.1:{_httpPort}";

    public async Task InitializeAsync()
    {
        Librdkafka.EnsureLoaded();
        _broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["moldau.http.listeners"] = Url });
        await _broker.WaitForOutputAsync("HTTP listener", TimeSpan.FromSeconds(30));
    }

    public async Task DisposeAsync() => await _broker.DisposeAsync();

    [Fact]
    public async Task HealthEndpointsAnswerOnceServing()
    {
        Assert.Equal(HttpStatusCode.OK, (await Http.GetAsync($"{Url}/health/live")).StatusCode);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        HttpResponseMessage ready;
        while ((ready = await Http.GetAsync($"{Url}/health/ready")).StatusCode != HttpStatusCode.OK && DateTime.UtcNow < deadline)
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, ready.StatusCode);
            await Task.Delay(100);
        }

        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.Equal("ready", (await ready.Content.ReadAsStringAsync()).Trim());
        Assert.Equal(HttpStatusCode.NotFound, (await Http.GetAsync($"{Url}/nothing-here")).StatusCode);
    }

    [Fact]
    public async Task MetricsCountWhatRealClientsProducedConsumedAndCommitted()
    {
        const int Messages = 50;
        var topic = "metrics-" + Guid.NewGuid().ToString("N")[..8];
        var group = "metrics-group-" + topic;
        using (var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = _broker.BootstrapServers }).Build())
        {
            await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);

            // A second create of the same topic: CreateTopics answers TOPIC_ALREADY_EXISTS.
            await Assert.ThrowsAsync<CreateTopicsException>(() => admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]));
        }

        using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = _broker.BootstrapServers, LingerMs = 5 }).Build())
        {
            for (var i = 0; i < Messages; i++)
            {
                producer.Produce(new TopicPartition(topic, 0), new Message<string, string> { Key = $"k{i}", Value = new string('v', 100 + i) });
            }

            producer.Flush(TimeSpan.FromSeconds(30));
        }

        // Read everything once (assigned, not subscribed: no rebalance re-reads), then commit 30 of 50.
        using (var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
        {
            BootstrapServers = _broker.BootstrapServers,
            GroupId = group,
            EnableAutoCommit = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
        }).Build())
        {
            consumer.Assign(new TopicPartitionOffset(topic, 0, Offset.Beginning));
            var read = 0;
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (read < Messages && DateTime.UtcNow < deadline)
            {
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { Message: not null })
                {
                    read++;
                }
            }

            Assert.Equal(Messages, read);
            consumer.Commit([new TopicPartitionOffset(topic, 0, 30)]);
            consumer.Close();
        }

        var metrics = Exposition.Parse(await Http.GetStringAsync($"{Url}/metrics"));
        var byTopic = new Dictionary<string, string> { ["topic"] = topic };
        var byPartition = new Dictionary<string, string> { ["topic"] = topic, ["partition"] = "0" };

        // In and out: the records counted, and the bytes exactly those the log holds (one segment, nothing deleted).
        var logSize = metrics.Value("kafka_log_log_size", byPartition);
        Assert.True(logSize > Messages * 100, $"log size {logSize}");
        Assert.Equal(Messages, metrics.Value("kafka_server_brokertopicmetrics_messagesin_total", byTopic));
        Assert.Equal(logSize, metrics.Value("kafka_server_brokertopicmetrics_bytesin_total", byTopic));
        Assert.Equal(Messages, metrics.Value("kafka_server_brokertopicmetrics_messagesout_total", byTopic));
        Assert.Equal(logSize, metrics.Value("kafka_server_brokertopicmetrics_bytesout_total", byTopic));
        Assert.True(metrics.Value("kafka_server_brokertopicmetrics_totalproducerequests_total", byTopic) >= 1);
        Assert.Equal(0, metrics.Value("kafka_server_brokertopicmetrics_failedproducerequests_total", byTopic));
        Assert.True(metrics.Value("kafka_server_brokertopicmetrics_totalfetchrequests_total", byTopic) >= 1);
        Assert.Equal(Messages, metrics.Value("kafka_log_log_logendoffset", byPartition));
        Assert.Equal(0, metrics.Value("kafka_log_log_logstartoffset", byPartition));
        Assert.Equal(1, metrics.Value("kafka_log_log_numlogsegments", byPartition));

        // The group's lag: high watermark 50, committed 30.
        var byGroup = new Dictionary<string, string> { ["consumergroup"] = group, ["topic"] = topic, ["partition"] = "0" };
        Assert.Equal(20, metrics.Value("kafka_consumergroup_lag", byGroup));
        Assert.Equal(30, metrics.Value("kafka_consumergroup_current_offset", byGroup));

        // Requests per API (summed over versions), and the latency histogram counts the same requests.
        foreach (var api in new[] { "Produce", "FetchConsumer", "OffsetCommit", "Metadata", "ApiVersions", "CreateTopics" })
        {
            var requests = metrics.Sum("kafka_network_requestmetrics_requests_total", new() { ["request"] = api });
            Assert.True(requests >= 1, $"{api}: {requests} requests");
            Assert.Equal(requests, metrics.Value("kafka_network_requestmetrics_totaltimems_count", new() { ["request"] = api }));
            Assert.Equal(requests, metrics.Value("kafka_network_requestmetrics_localtimems_count", new() { ["request"] = api }));
            Assert.True(metrics.Value("kafka_network_requestmetrics_totaltimems_sum", new() { ["request"] = api }) > 0);
            Assert.Equal(requests, metrics.Value("kafka_network_requestmetrics_totaltimems_bucket", new() { ["request"] = api, ["le"] = "+Inf" }));
        }

        Assert.Equal(1, metrics.Value("kafka_network_requestmetrics_errors_total", new() { ["request"] = "CreateTopics", ["error"] = "TOPIC_ALREADY_EXISTS" }));
        Assert.False(metrics.Has("kafka_network_requestmetrics_errors_total", new() { ["request"] = "Produce" }));

        Assert.Equal(0, metrics.Value("kafka_server_replicamanager_underreplicatedpartitions", []));
        Assert.Equal(0, metrics.Value("kafka_controller_kafkacontroller_offlinepartitionscount", []));
        Assert.True(metrics.Value("kafka_server_socket_server_metrics_connection_creation_total", new() { ["listener"] = "PLAINTEXT" }) >= 3);
        Assert.True(metrics.Has("kafka_server_socket_server_metrics_connection_count", new() { ["listener"] = "PLAINTEXT" }));
        Assert.True(metrics.Value("kafka_log_logflushstats_logflushrateandtimems_count", []) >= 1);
        Assert.True(metrics.Sum("dotnet_gc_collections_total", []) >= 0 && metrics.Has("dotnet_gc_collections_total", []));
        Assert.True(metrics.Has("dotnet_thread_pool_thread_count", []));
        Assert.Equal("counter", metrics.Types["kafka_server_brokertopicmetrics_bytesin_total"]);
        Assert.Equal("histogram", metrics.Types["kafka_network_requestmetrics_totaltimems"]);
        Assert.Equal("gauge", metrics.Types["kafka_consumergroup_lag"]);

        // The Grafana dashboard reads only names that exist: here after this traffic, or (SASL,
        // quotas) only once something is authenticated or throttled.
        var dashboard = File.ReadAllText(Path.Combine(RepositoryRoot(), "deploy", "grafana", "moldau.json"));
        var used = System.Text.RegularExpressions.Regex.Matches(dashboard, "(kafka|dotnet)_[a-z_]+").Select(m => m.Value).ToHashSet();
        string[] onlyWhenUsed = ["kafka_server_socket_server_metrics_failed_authentication_total", "kafka_server_socket_server_metrics_successful_authentication_total", "kafka_network_requestmetrics_throttletimems_bucket"];
        Assert.True(used.Count > 20, $"{used.Count} names in the dashboard");
        foreach (var name in used.Except(onlyWhenUsed))
        {
            Assert.True(metrics.Samples.Any(m => m.Name == name), $"the dashboard reads {name}, which /metrics does not have");
        }

        // OpenMetrics when asked for.
        using var request = new HttpRequestMessage(HttpMethod.Get, $"{Url}/metrics");
        request.Headers.Accept.ParseAdd("application/openmetrics-text; version=1.0.0");
        using var open = await Http.SendAsync(request);
        Assert.Equal("application/openmetrics-text", open.Content.Headers.ContentType?.MediaType);
        var openText = await open.Content.ReadAsStringAsync();
        Assert.EndsWith("# EOF\n", openText, StringComparison.Ordinal);
        Assert.Equal(Messages, Exposition.Parse(openText).Value("kafka_server_brokertopicmetrics_messagesin_total", byTopic));
    }

    [Fact]
    public async Task GarbageSlowAndManyHttpClientsLeaveKafkaServing()
    {
        // Garbage: a 400, or the connection closed.
        using (var garbage = new TcpClient())
        {
            await garbage.ConnectAsync(IPAddress.Loopback, _httpPort);
            var stream = garbage.GetStream();
            await stream.WriteAsync("\u0016\u0003\u0001 NOT HTTP AT ALL \0\0\r\n\r\n"u8.ToArray());
            var answer = await ReadSomeAsync(stream);
            Assert.True(answer.Length == 0 || answer.StartsWith("HTTP/1.1 400", StringComparison.Ordinal), answer);
        }

        // A slow client that never finishes its headers, and more idle connections than the limit.
        var held = new List<TcpClient>();
        try
        {
            var slow = new TcpClient();
            held.Add(slow);
            await slow.ConnectAsync(IPAddress.Loopback, _httpPort);
            await slow.GetStream().WriteAsync("GET /metrics HTTP/1.1\r\nHost: x\r\n"u8.ToArray());
            for (var i = 0; i < 100; i++)
            {
                var c = new TcpClient();
                held.Add(c);
                await c.ConnectAsync(IPAddress.Loopback, _httpPort);
            }

            // Kafka goes on: a produce and its acknowledgement while the HTTP side is flooded.
            using var producer = new ProducerBuilder<Null, string>(new ProducerConfig { BootstrapServers = _broker.BootstrapServers, MessageTimeoutMs = 15000 }).Build();
            var delivered = await producer.ProduceAsync("metrics-flood", new Message<Null, string> { Value = "still here" });
            Assert.Equal(PersistenceStatus.Persisted, delivered.Status);
        }
        finally
        {
            foreach (var c in held)
            {
                c.Dispose();
            }
        }

        // And HTTP serves again once they are gone.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                if ((await Http.GetAsync($"{Url}/health/live")).StatusCode == HttpStatusCode.OK)
                {
                    break;
                }
            }
            catch (HttpRequestException) when (DateTime.UtcNow < deadline)
            {
            }

            Assert.True(DateTime.UtcNow < deadline, "the HTTP listener did not serve again");
            await Task.Delay(200);
        }

        var metrics = Exposition.Parse(await Http.GetStringAsync($"{Url}/metrics"));
        Assert.Equal(1, metrics.Value("kafka_server_brokertopicmetrics_messagesin_total", new() { ["topic"] = "metrics-flood" }));
    }

    [Fact]
    public async Task SaslLoginsAreCountedPerListener()
    {
        var port = BrokerProcess.FreePort();
        var httpPort = BrokerProcess.FreePort();
        await using var broker = await BrokerProcess.StartAsync(
            properties: new Dictionary<string, string>
            {
                ["listeners"] = $"SASL_PLAINTEXT://127.0.0.1:{port}",
                ["sasl.enabled.mechanisms"] = "PLAIN",
                ["listener.name.sasl_plaintext.plain.sasl.jaas.config"] =
                    "org.apache.kafka.common.security.plain.PlainLoginModule required user_bob=\"bob-secret\";",
                ["connection.failed.authentication.delay.ms"] = "0",
                ["moldau.http.listeners"] = $"http://127.0.0.1:{httpPort}",
            },
            port: port);
        await broker.WaitForOutputAsync("HTTP listener", TimeSpan.FromSeconds(30));

        AdminClientConfig Login(string password) => new()
        {
            BootstrapServers = broker.BootstrapServers,
            SecurityProtocol = SecurityProtocol.SaslPlaintext,
            SaslMechanism = SaslMechanism.Plain,
            SaslUsername = "bob",
            SaslPassword = password,
        };

        using (var wrong = new AdminClientBuilder(Login("guess")).Build())
        {
            Assert.ThrowsAny<KafkaException>(() => wrong.GetMetadata(TimeSpan.FromSeconds(3)));
        }

        using (var right = new AdminClientBuilder(Login("bob-secret")).Build())
        {
            Assert.NotNull(right.GetMetadata(TimeSpan.FromSeconds(10)));
        }

        var metrics = Exposition.Parse(await Http.GetStringAsync($"http://127.0.0.1:{httpPort}/metrics"));
        var listener = new Dictionary<string, string> { ["listener"] = "SASL_PLAINTEXT" };
        Assert.True(metrics.Value("kafka_server_socket_server_metrics_failed_authentication_total", listener) >= 1);
        Assert.True(metrics.Value("kafka_server_socket_server_metrics_successful_authentication_total", listener) >= 1);
        Assert.True(metrics.Sum("kafka_network_requestmetrics_errors_total", new() { ["request"] = "SaslAuthenticate", ["error"] = "SASL_AUTHENTICATION_FAILED" }) >= 1);
    }

    [Fact]
    public async Task AnAddressThatCannotBeBoundStopsTheBroker()
    {
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        var port = ((IPEndPoint)taken.LocalEndpoint).Port;
        BrokerProcess? broker = null;
        try
        {
            // The Kafka listener may accept before the HTTP one fails: then the output tells.
            broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string> { ["moldau.http.listeners"] = $"http://127.0.0.1:{port}" });
            Assert.Contains("cannot bind moldau.http.listeners", await broker.WaitForOutputAsync("cannot bind moldau.http.listeners", TimeSpan.FromSeconds(30)), StringComparison.Ordinal);
        }
        catch (InvalidOperationException e)
        {
            Assert.Contains("broker exited with 3", e.Message, StringComparison.Ordinal);
            Assert.Contains("cannot bind moldau.http.listeners", e.Message, StringComparison.Ordinal);
        }
        finally
        {
            if (broker is not null)
            {
                await broker.DisposeAsync();
            }
        }
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Moldau.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("no Moldau.slnx above " + AppContext.BaseDirectory);
    }

    private static async Task<string> ReadSomeAsync(NetworkStream stream)
    {
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        try
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            return Encoding.ASCII.GetString(buffer, 0, n);
        }
        catch (IOException)
        {
            return string.Empty; // reset by the server: closed
        }
    }

    /// <summary>
    /// The Prometheus text exposition format (and OpenMetrics'), parsed line by line: # TYPE and
    /// # HELP lines, then samples <c>name{label="value",...} value [timestamp]</c> with escaped
    /// label values. Anything else fails the parse.
    /// </summary>
    private sealed class Exposition
    {
        public Dictionary<string, string> Types { get; } = [];

        public List<(string Name, Dictionary<string, string> Labels, double Value)> Samples { get; } = [];

        public static Exposition Parse(string text)
        {
            var result = new Exposition();
            foreach (var line in text.Split('\n'))
            {
                if (line.Length == 0 || line == "# EOF")
                {
                    continue;
                }

                if (line.StartsWith('#'))
                {
                    var parts = line.Split(' ', 4);
                    Assert.True(parts.Length >= 3 && parts[1] is "TYPE" or "HELP" or "UNIT", $"bad comment line: {line}");
                    if (parts[1] == "TYPE")
                    {
                        Assert.Contains(parts[3], new[] { "counter", "gauge", "histogram", "summary", "untyped", "unknown" });
                        result.Types[parts[2]] = parts[3];
                    }

                    continue;
                }

                var i = 0;
                while (i < line.Length && (char.IsLetterOrDigit(line[i]) || line[i] is '_' or ':'))
                {
                    i++;
                }

                var name = line[..i];
                Assert.True(name.Length > 0 && !char.IsDigit(name[0]), $"bad metric name: {line}");
                var labels = new Dictionary<string, string>();
                if (i < line.Length && line[i] == '{')
                {
                    i++;
                    while (line[i] != '}')
                    {
                        var eq = line.IndexOf('=', i);
                        var label = line[i..eq];
                        Assert.Matches("^[a-zA-Z_][a-zA-Z0-9_]*$", label);
                        Assert.Equal('"', line[eq + 1]);
                        var value = new StringBuilder();
                        var j = eq + 2;
                        for (; line[j] != '"'; j++)
                        {
                            if (line[j] == '\\')
                            {
                                j++;
                                value.Append(line[j] switch { 'n' => '\n', var c => c });
                            }
                            else
                            {
                                value.Append(line[j]);
                            }
                        }

                        labels[label] = value.ToString();
                        i = j + 1;
                        if (line[i] == ',')
                        {
                            i++;
                        }
                    }

                    i++;
                }

                Assert.Equal(' ', line[i]);
                var fields = line[(i + 1)..].Split(' ');
                Assert.True(fields.Length is 1 or 2, $"bad sample: {line}");
                var number = fields[0] switch
                {
                    "+Inf" => double.PositiveInfinity,
                    "-Inf" => double.NegativeInfinity,
                    "NaN" => double.NaN,
                    var f => double.Parse(f, NumberStyles.Float, CultureInfo.InvariantCulture),
                };
                Assert.True(result.Types.Keys.Any(t => name == t || name.StartsWith(t + "_", StringComparison.Ordinal)), $"sample without a TYPE: {line}");
                result.Samples.Add((name, labels, number));
            }

            return result;
        }

        public bool Has(string name, Dictionary<string, string> labels) => Matching(name, labels).Any();

        /// <summary>The one sample of <paramref name="name"/> whose labels include <paramref name="labels"/>.</summary>
        public double Value(string name, Dictionary<string, string> labels)
        {
            var found = Matching(name, labels).ToList();
            Assert.True(found.Count == 1, $"{found.Count} samples of {name} with {string.Join(",", labels)}");
            return found[0].Value;
        }

        public double Sum(string name, Dictionary<string, string> labels) => Matching(name, labels).Sum(s => s.Value);

        private IEnumerable<(string Name, Dictionary<string, string> Labels, double Value)> Matching(string name, Dictionary<string, string> labels) =>
            Samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out var v) && v == l.Value));
    }
}
