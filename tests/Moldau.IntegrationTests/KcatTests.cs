using Moldau.IntegrationTests.Infrastructure;

namespace Moldau.IntegrationTests;

/// <summary>Debian's kcat (librdkafka 2.0.2), unmodified, against a Moldau process.</summary>
[Collection(BrokerCollection.Name)]
public sealed class KcatTests(SharedBroker shared)
{
    private static string Kcat() =>
        ExternalTool.Find("kcat") ?? throw new InvalidOperationException("kcat is not installed; scripts/test.sh installs it (apt-get install kcat)");

    [Fact]
    public async Task KcatUsesDebiansLibrdkafka()
    {
        var version = await ExternalTool.RunAsync(Kcat(), ["-V"]);
        Assert.Contains("librdkafka 2.0.2", version.Stdout + version.Stderr, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("none")]
    [InlineData("gzip")]
    [InlineData("snappy")]
    [InlineData("lz4")]
    [InlineData("zstd")]
    public async Task AThousandKeyedMessagesRoundTrip(string codec)
    {
        var topic = $"kcat-{codec}-" + Guid.NewGuid().ToString("N")[..8];
        var input = string.Concat(Enumerable.Range(1, 1000).Select(i => $"key{i}:value-{i}-{new string('x', i % 37)}\n"));
        var broker = shared.Broker.BootstrapServers;

        var produce = await ExternalTool.RunAsync(Kcat(), ["-P", "-b", broker, "-t", topic, "-K:", "-z", codec], input);
        Assert.True(produce.ExitCode == 0, produce.Stderr);

        var consume = await ExternalTool.RunAsync(Kcat(), ["-C", "-b", broker, "-t", topic, "-o", "beginning", "-e", "-q", "-K:"]);
        Assert.True(consume.ExitCode == 0, consume.Stderr);
        Assert.Equal(input, consume.Stdout);

        var list = await ExternalTool.RunAsync(Kcat(), ["-L", "-b", broker, "-t", topic]);
        Assert.Contains($"topic \"{topic}\" with 1 partitions", list.Stdout, StringComparison.Ordinal);
        Assert.Contains("leader 1", list.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConsumingFromAnOffsetAndTheEndWorks()
    {
        var topic = "kcat-offsets-" + Guid.NewGuid().ToString("N")[..8];
        var broker = shared.Broker.BootstrapServers;
        var input = string.Concat(Enumerable.Range(0, 10).Select(i => $"m{i}\n"));
        Assert.Equal(0, (await ExternalTool.RunAsync(Kcat(), ["-P", "-b", broker, "-t", topic], input)).ExitCode);
        var fromFive = await ExternalTool.RunAsync(Kcat(), ["-C", "-b", broker, "-t", topic, "-o", "5", "-e", "-q"]);
        Assert.Equal(string.Concat(Enumerable.Range(5, 5).Select(i => $"m{i}\n")), fromFive.Stdout);
        var lastTwo = await ExternalTool.RunAsync(Kcat(), ["-C", "-b", broker, "-t", topic, "-o", "-2", "-e", "-q"]);
        Assert.Equal("m8\nm9\n", lastTwo.Stdout);
    }
}

/// <summary>kcat's balanced consumer (-G): librdkafka's consumer group protocol against Moldau's coordinator.</summary>
[Collection(BrokerCollection.Name)]
public sealed class KcatGroupTests(SharedBroker shared)
{
    [Fact]
    public async Task ABalancedConsumerResumesFromItsCommittedOffsets()
    {
        var kcat = ExternalTool.Find("kcat")!;
        var topic = "kcat-group-" + Guid.NewGuid().ToString("N")[..8];
        var group = "g-" + topic;
        var broker = shared.Broker.BootstrapServers;
        Assert.Equal(0, (await ExternalTool.RunAsync(kcat, ["-P", "-b", broker, "-t", topic], string.Concat(Enumerable.Range(0, 100).Select(i => $"a{i}\n")))).ExitCode);

        var first = await ExternalTool.RunAsync(kcat, ["-b", broker, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", topic]);
        Assert.Equal(string.Concat(Enumerable.Range(0, 100).Select(i => $"a{i}\n")), first.Stdout);

        Assert.Equal(0, (await ExternalTool.RunAsync(kcat, ["-P", "-b", broker, "-t", topic], "b0\nb1\n")).ExitCode);
        var second = await ExternalTool.RunAsync(kcat, ["-b", broker, "-G", group, "-X", "auto.offset.reset=earliest", "-e", "-q", topic]);
        Assert.Equal("b0\nb1\n", second.Stdout);
    }
}
