using System.Net;
using Moldau.Server.Configuration;
using Moldau.Server.Network;

namespace Moldau.Server.Tests;

public sealed class ConfigurationTests
{
    [Fact]
    public void PropertiesFollowJavasFormat()
    {
        var props = PropertiesFile.Parse(
            "# comment\n! also a comment\n  node.id = 7\nlog.dirs:/a,\\\n    /b\nkey value with spaces\nescaped\\=key=tab\\there\nuni=\\u0041\\\\\nempty=\n\r\nlast=1");
        Assert.Equal("7", props["node.id"]);
        Assert.Equal("/a,/b", props["log.dirs"]);
        Assert.Equal("value with spaces", props["key"]);
        Assert.Equal("tab\there", props["escaped=key"]);
        Assert.Equal("A\\", props["uni"]);
        Assert.Equal(string.Empty, props["empty"]);
        Assert.Equal("1", props["last"]);
    }

    [Fact]
    public void NoFileMeansKafkasDefaultsAndTheEmbeddedDataDirectory()
    {
        var config = ServerConfig.From(new Dictionary<string, string>());
        Assert.Equal(1, config.Options.NodeId);
        Assert.Equal([Path.GetFullPath("./data")], config.Options.LogDirs);
        Assert.Equal(1, config.Options.NumPartitions);
        Assert.True(config.Options.AutoCreateTopicsEnable);
        Assert.Equal(104857600, config.Options.SocketRequestMaxBytes);
        var listener = Assert.Single(config.Listeners);
        Assert.Equal(("PLAINTEXT", string.Empty, 9092), (listener.Name, listener.Host, listener.Port));
    }

    [Fact]
    public void ControllerListenersAreNotServedAndAdvertisedListenersAreRead()
    {
        var config = ServerConfig.From(new Dictionary<string, string>
        {
            ["listeners"] = "PLAINTEXT://:9092,CONTROLLER://:9093",
            ["controller.listener.names"] = "CONTROLLER",
            ["advertised.listeners"] = "PLAINTEXT://kafka.example:19092",
            ["listener.security.protocol.map"] = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            ["process.roles"] = "broker,controller",
            ["something.unknown"] = "x",
        });
        Assert.Equal(["PLAINTEXT"], config.Listeners.Select(l => l.Name));
        Assert.Equal(("kafka.example", 19092), (config.Advertised["PLAINTEXT"].Host, config.Advertised["PLAINTEXT"].Port));
        Assert.Equal(["something.unknown"], config.UnknownKeys);
    }

    [Theory]
    [InlineData("node.id", "one")]
    [InlineData("num.partitions", "0")]
    [InlineData("auto.create.topics.enable", "yes")]
    [InlineData("listeners", "PLAINTEXT:9092")]
    [InlineData("socket.request.max.bytes", "-1")]
    [InlineData("log.retention.ms", "a week")] // keys read only later, by the log settings, are checked at start too
    [InlineData("log.cleanup.policy", "shred")]
    [InlineData("log.cleaner.min.cleanable.ratio", "2")]
    [InlineData("compression.type", "brotli")]
    [InlineData("log.preallocate", "true")]
    public void AMalformedValueNamesTheKeyAndTheValue(string key, string value)
    {
        var e = Assert.Throws<ConfigException>(() => ServerConfig.From(new Dictionary<string, string> { [key] = value }));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Contains(value, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NetworkLimitsDefaultToKafkasExceptTheBoundedRequestMemory()
    {
        var limits = ServerConfig.From(new Dictionary<string, string>()).Network;
        Assert.Equal(104857600, limits.MaxFrameBytes);
        Assert.Equal(256L * 1024 * 1024, limits.QueuedMaxRequestBytes);
        Assert.Equal(int.MaxValue, limits.MaxConnections);
        Assert.Equal(int.MaxValue, limits.MaxConnectionsPerIp);
        Assert.Empty(limits.MaxConnectionsPerIpOverrides);
        Assert.Equal(600_000, limits.ConnectionsMaxIdleMs);
        Assert.Equal(30_000, limits.RequestReceiveTimeoutMs);

        // The budget always holds the largest frame a client may send.
        var large = ServerConfig.From(new Dictionary<string, string> { ["socket.request.max.bytes"] = "500000000" }).Network;
        Assert.Equal(500000000, large.QueuedMaxRequestBytes);
    }

    [Fact]
    public void NetworkLimitsAreRead()
    {
        var limits = ServerConfig.From(new Dictionary<string, string>
        {
            ["queued.max.request.bytes"] = "-1",
            ["max.connections"] = "100",
            ["max.connections.per.ip"] = "10",
            ["max.connections.per.ip.overrides"] = "127.0.0.1:20, [::1]:30",
            ["connections.max.idle.ms"] = "-1",
            ["moldau.request.receive.timeout.ms"] = "5000",
        }).Network;
        Assert.Equal(-1, limits.QueuedMaxRequestBytes);
        Assert.Equal(100, limits.MaxConnections);
        Assert.Equal(10, limits.MaxConnectionsPerIp);
        Assert.Equal(20, limits.MaxConnectionsPerIpOverrides[IPAddress.Loopback]);
        Assert.Equal(30, limits.MaxConnectionsPerIpOverrides[IPAddress.IPv6Loopback]);
        Assert.Equal(-1, limits.ConnectionsMaxIdleMs);
        Assert.Equal(5000, limits.RequestReceiveTimeoutMs);
    }

    [Theory]
    [InlineData("queued.max.request.bytes", "1000")]
    [InlineData("max.connections", "-5")]
    [InlineData("max.connections.per.ip", "x")]
    [InlineData("max.connections.per.ip.overrides", "127.0.0.1")]
    [InlineData("connections.max.idle.ms", "-2")]
    [InlineData("moldau.request.receive.timeout.ms", "0")]
    public void AMalformedNetworkLimitNamesTheKeyAndTheValue(string key, string value)
    {
        var e = Assert.Throws<ConfigException>(() => ServerConfig.From(new Dictionary<string, string> { [key] = value }));
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.Contains(value, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnSslListenerWithoutAKeystoreStopsStartUp()
    {
        var e = Assert.Throws<ConfigException>(() => ServerConfig.From(new Dictionary<string, string> { ["listeners"] = "SSL://:9093" }));
        Assert.Contains("ssl.keystore.location", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CLIENT://:9093", "CLIENT:SASL_SSL")]
    public void ASaslSslListenerWithoutAKeystoreStopsStartUp(string listeners, string? map)
    {
        var props = new Dictionary<string, string> { ["listeners"] = listeners };
        if (map is not null)
        {
            props["listener.security.protocol.map"] = map;
        }

        var e = Assert.Throws<ConfigException>(() => ServerConfig.From(props));
        Assert.Contains("ssl.keystore.location", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EachListenerCarriesItsSecurityProtocolFromTheMap()
    {
        var config = ServerConfig.From(new Dictionary<string, string>
        {
            ["listeners"] = "INTERNAL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
            ["listener.security.protocol.map"] = "INTERNAL:plaintext,PLAINTEXT:PLAINTEXT",
            ["listener.name.internal.ssl.keystore.type"] = "PEM",
        });
        Assert.All(config.Listeners, l => Assert.Equal("PLAINTEXT", l.SecurityProtocol));
        Assert.Empty(config.UnknownKeys);
    }

    [Fact]
    public void AListenerKeyWinsOverTheBrokerWideKey()
    {
        var props = new Dictionary<string, string>
        {
            ["sasl.enabled.mechanisms"] = "GSSAPI",
            ["listener.name.client.sasl.enabled.mechanisms"] = " PLAIN ",
            ["listener.name.client.scram-sha-256.sasl.jaas.config"] = "scram",
            ["sasl.jaas.config"] = "shared",
        };
        var client = new Moldau.Broker.Configuration.ListenerProperties(props, "CLIENT");
        var other = new Moldau.Broker.Configuration.ListenerProperties(props, "OTHER");
        Assert.Equal("PLAIN", client.Get("sasl.enabled.mechanisms"));
        Assert.Equal("GSSAPI", other.Get("sasl.enabled.mechanisms"));
        Assert.Null(client.Get("ssl.keystore.location"));
        Assert.Equal("scram", client.GetForMechanism("SCRAM-SHA-256", "sasl.jaas.config"));
        Assert.Equal("shared", client.GetForMechanism("PLAIN", "sasl.jaas.config"));
    }

    [Fact]
    public void CommandLineOverridesWinOverTheFile()
    {
        var file = Path.GetTempFileName();
        File.WriteAllText(file, "num.partitions=3\nnode.id=2\n");
        try
        {
            var cl = CommandLine.Parse([file, "--override", "num.partitions=5"]);
            var props = cl.LoadProperties();
            Assert.Equal("5", props["num.partitions"]);
            Assert.Equal("2", props["node.id"]);
        }
        finally
        {
            File.Delete(file);
        }

        Assert.Throws<ConfigException>(() => CommandLine.Parse(["--override", "novalue"]));
        Assert.True(CommandLine.Parse(["--help"]).Help);
    }
}
