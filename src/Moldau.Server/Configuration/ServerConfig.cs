using System.Globalization;
using System.Net;
using Moldau.Broker;
using Moldau.Broker.Configuration;
using Moldau.Security;
using Moldau.Security.Tls;
using Moldau.Server.Network;

namespace Moldau.Server.Configuration;

/// <summary>A listener to bind: <c>NAME://host:port</c>.</summary>
/// <param name="Name">The listener name, e.g. PLAINTEXT.</param>
/// <param name="Host">The host to bind; empty binds every interface.</param>
/// <param name="Port">The port; 0 picks a free one.</param>
/// <param name="SecurityProtocol">PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, from listener.security.protocol.map.</param>
internal sealed record ListenerConfig(string Name, string Host, int Port, string SecurityProtocol = "PLAINTEXT");

/// <summary>
/// Turns server.properties keys (plus command-line overrides) into <see cref="BrokerOptions"/> and
/// the listeners to bind.
/// </summary>
internal sealed class ServerConfig
{
    private static readonly HashSet<string> Used =
    [
        "moldau.http.listeners", "moldau.log.direct.io", "moldau.log.open.files.max", "moldau.log.background.open.delay.ms", "node.id", "broker.id", "listeners", "advertised.listeners", "listener.security.protocol.map",
        "controller.listener.names", "log.dirs", "log.dir", "num.partitions", "auto.create.topics.enable",
        "socket.request.max.bytes", "message.max.bytes", "log.segment.bytes", "group.initial.rebalance.delay.ms",
        "group.min.session.timeout.ms", "group.max.session.timeout.ms", "group.max.size", "offsets.topic.num.partitions",
        "log.message.timestamp.before.max.ms", "log.message.timestamp.after.max.ms",
        "log.cleaner.backoff.ms", "log.cleaner.delete.retention.ms", "log.cleaner.min.cleanable.ratio",
        "offsets.topic.segment.bytes", "transaction.state.log.num.partitions", "transaction.state.log.segment.bytes",
        "queued.max.request.bytes", "max.connections", "max.connections.per.ip", "max.connections.per.ip.overrides",
        "connections.max.idle.ms", "moldau.request.receive.timeout.ms",
        "sasl.enabled.mechanisms", "sasl.jaas.config", "connections.max.reauth.ms", "connection.failed.authentication.delay.ms", "sasl.server.max.receive.size",
    ];

    // Kafka keys Moldau accepts without acting on them (yet): a single node has no quorum, no
    // replication and no thread pools to size.
    private static readonly HashSet<string> KnownKafkaKeys =
    [
        "process.roles", "broker.session.timeout.ms", "broker.heartbeat.interval.ms", "controller.quorum.voters", "controller.quorum.bootstrap.servers", "inter.broker.listener.name",
        "num.network.threads", "num.io.threads", "socket.send.buffer.bytes", "socket.receive.buffer.bytes",
        "num.recovery.threads.per.data.dir", "offsets.topic.replication.factor", "transaction.state.log.replication.factor",
        "transaction.state.log.min.isr", "log.retention.hours", "log.retention.ms", "log.retention.minutes", "log.retention.bytes",
        "log.retention.check.interval.ms", "default.replication.factor", "min.insync.replicas", "group.initial.rebalance.delay.ms",
        "offsets.topic.num.partitions", "share.coordinator.state.topic.replication.factor", "share.coordinator.state.topic.min.isr",
        "log.flush.interval.messages", "log.flush.interval.ms", "log.cleaner.enable", "delete.topic.enable", "zookeeper.connect",
        "log.index.interval.bytes", "log.roll.ms", "log.message.timestamp.type", "log.roll.hours", "compression.type", "log.cleanup.policy", "unclean.leader.election.enable",
        "log.flush.offset.checkpoint.interval.ms", "log.flush.scheduler.interval.ms", "log.segment.delete.delay.ms",
    ];

    /// <summary>The broker's settings.</summary>
    public required BrokerOptions Options { get; init; }

    /// <summary>Frame sizes, request memory, connection counts and timeouts for the listeners.</summary>
    public required NetworkLimits Network { get; init; }

    /// <summary>The listeners to bind.</summary>
    public required IReadOnlyList<ListenerConfig> Listeners { get; init; }

    /// <summary>advertised.listeners by listener name (may be absent for a listener).</summary>
    public required IReadOnlyDictionary<string, ListenerConfig> Advertised { get; init; }

    /// <summary>The TLS side of each SSL and SASL_SSL listener, by listener name (certificates loaded).</summary>
    public IReadOnlyDictionary<string, TlsServer> Tls { get; init; } = new Dictionary<string, TlsServer>();

    /// <summary>Keys that are not Kafka keys Moldau knows, to be logged once each.</summary>
    public required IReadOnlyList<string> UnknownKeys { get; init; }

    /// <summary>moldau.http.listeners: where /metrics and /health are served (empty: nowhere).</summary>
    public IReadOnlyList<Http.HttpListenerConfig> HttpListeners { get; init; } = [];


    /// <summary>Builds the configuration from properties; throws <see cref="ConfigException"/> on a malformed value.</summary>
    public static ServerConfig From(IReadOnlyDictionary<string, string> props)
    {
        string? Get(string key) => props.TryGetValue(key, out var v) ? v.Trim() : null;

        // Every key Moldau has a definition for is checked by it first (type, bounds, allowed
        // values), as Kafka's KafkaConfig refuses to start on a bad value.
        foreach (var (key, value) in props.OrderBy(p => p.Key, StringComparer.Ordinal))
        {
            if (BrokerProperties.Validate(key, value) is { } problem)
            {
                throw new ConfigException(problem);
            }
        }

        var securityMap = ParseSecurityMap(Get("listener.security.protocol.map") ?? "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT");
        var controllerNames = (Get("controller.listener.names") ?? string.Empty)
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .ToHashSet(StringComparer.OrdinalIgnoreCase);
        var listeners = new List<ListenerConfig>();
        var tls = new Dictionary<string, TlsServer>(StringComparer.OrdinalIgnoreCase);
        foreach (var l in ParseListeners("listeners", Get("listeners") ?? "PLAINTEXT://:9092"))
        {
            if (controllerNames.Contains(l.Name))
            {
                continue;
            }

            var protocol = securityMap.TryGetValue(l.Name, out var p) ? p
                : Enum.TryParse<Protocol>(l.Name, ignoreCase: true, out var implied) ? implied.ToString()
                : throw new ConfigException($"listeners: no security protocol for listener '{l.Name}' in listener.security.protocol.map");
            if (!SupportedProtocols.Contains(protocol))
            {
                throw new ConfigException($"listeners: listener '{l.Name}' uses {protocol}, which this broker does not serve (PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL are served)");
            }

            if (Moldau.Security.SecurityProtocol.UsesSasl(protocol.ToUpperInvariant()) && Broker.Security.SaslMechanismRegistry.Validate(props, l.Name) is { } saslProblem)
            {
                throw new ConfigException(saslProblem);
            }

            listeners.Add(l with { SecurityProtocol = protocol.ToUpperInvariant() });
            if (SecurityProtocol.UsesTls(protocol.ToUpperInvariant()))
            {
                tls[l.Name] = LoadTls(props, l.Name);
            }
        }

        if (listeners.Count == 0)
        {
            throw new ConfigException($"listeners: '{Get("listeners")}' has no listener outside controller.listener.names");
        }

        var advertised = new Dictionary<string, ListenerConfig>(StringComparer.OrdinalIgnoreCase);
        if (Get("advertised.listeners") is { Length: > 0 } adv)
        {
            foreach (var a in ParseListeners("advertised.listeners", adv))
            {
                advertised[a.Name] = a;
            }
        }

        var logDirs = (Get("log.dirs") ?? Get("log.dir") ?? "./data")
            .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (logDirs.Length == 0)
        {
            throw new ConfigException($"log.dirs: '{Get("log.dirs")}' names no directory");
        }

        var options = new BrokerOptions
        {
            NodeId = Int("node.id", Get("node.id") ?? Get("broker.id") ?? "1", 0, int.MaxValue),
            LogDirs = logDirs.Select(FullPath).ToArray(),
            NumPartitions = Int("num.partitions", Get("num.partitions") ?? "1", 1, 10_000),
            AutoCreateTopicsEnable = Bool("auto.create.topics.enable", Get("auto.create.topics.enable") ?? "true"),
            SocketRequestMaxBytes = Int("socket.request.max.bytes", Get("socket.request.max.bytes") ?? "104857600", 1, int.MaxValue),
            MessageMaxBytes = Int("message.max.bytes", Get("message.max.bytes") ?? "1048588", 0, int.MaxValue),
            LogSegmentBytes = Long("log.segment.bytes", Get("log.segment.bytes") ?? "1073741824", 14, int.MaxValue),
            GroupInitialRebalanceDelayMs = Int("group.initial.rebalance.delay.ms", Get("group.initial.rebalance.delay.ms") ?? "3000", 0, int.MaxValue),
            GroupMinSessionTimeoutMs = Int("group.min.session.timeout.ms", Get("group.min.session.timeout.ms") ?? "6000", 0, int.MaxValue),
            GroupMaxSessionTimeoutMs = Int("group.max.session.timeout.ms", Get("group.max.session.timeout.ms") ?? "1800000", 0, int.MaxValue),
            GroupMaxSize = Int("group.max.size", Get("group.max.size") ?? "2147483647", 1, int.MaxValue),
            OffsetsTopicNumPartitions = Int("offsets.topic.num.partitions", Get("offsets.topic.num.partitions") ?? "50", 1, int.MaxValue),
            Properties = new Dictionary<string, string>(props, StringComparer.Ordinal),
        };

        var network = ParseNetwork(Get, options.SocketRequestMaxBytes);
        var unknown = props.Keys.Where(k => !Used.Contains(k) && !TlsSettings.Keys.Contains(k) && !KnownKafkaKeys.Contains(k) && !BrokerProperties.IsKnown(k) && !k.StartsWith("listener.name.", StringComparison.Ordinal) && !k.StartsWith("moldau.cluster.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToList();
        var http = Get("moldau.http.listeners");
        return new ServerConfig
        {
            Options = options,
            Network = network,
            Listeners = listeners,
            Advertised = advertised,
            UnknownKeys = unknown,
            Tls = tls,
            HttpListeners = Http.HttpListenerConfig.Parse(http),
        };
    }

    // Kafka's socket server keys, plus Moldau's bound on a half-received request. Kafka's default
    // for queued.max.request.bytes is -1 (unbounded); Moldau's is bounded (docs/security.md).
    private static NetworkLimits ParseNetwork(Func<string, string?> get, int socketRequestMaxBytes)
    {
        var queued = get("queued.max.request.bytes") is { } q
            ? Long("queued.max.request.bytes", q, -1, long.MaxValue)
            : Math.Max(NetworkLimits.DefaultQueuedMaxRequestBytes, socketRequestMaxBytes);
        if (queued > 0 && queued < socketRequestMaxBytes)
        {
            throw new ConfigException($"queued.max.request.bytes: '{queued}' must be -1 or at least socket.request.max.bytes ({socketRequestMaxBytes})");
        }

        var perIp = Int("max.connections.per.ip", get("max.connections.per.ip") ?? int.MaxValue.ToString(CultureInfo.InvariantCulture), 0, int.MaxValue);
        var overrides = new Dictionary<IPAddress, int>();
        foreach (var entry in (get("max.connections.per.ip.overrides") ?? string.Empty).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = entry.LastIndexOf(':');
            if (colon <= 0)
            {
                throw new ConfigException($"max.connections.per.ip.overrides: malformed entry '{entry}' (expected host:count)");
            }

            var host = entry[..colon].Trim('[', ']');
            var count = Int("max.connections.per.ip.overrides", entry[(colon + 1)..], 0, int.MaxValue);
            IPAddress[] addresses;
            try
            {
                addresses = IPAddress.TryParse(host, out var ip) ? [ip] : Dns.GetHostAddresses(host);
            }
            catch (System.Net.Sockets.SocketException e)
            {
                throw new ConfigException($"max.connections.per.ip.overrides: cannot resolve '{host}': {e.Message}");
            }

            foreach (var a in addresses)
            {
                overrides[ConnectionQuotas.Normalize(a)] = count;
            }
        }

        return new NetworkLimits
        {
            MaxFrameBytes = socketRequestMaxBytes,
            QueuedMaxRequestBytes = queued,
            MaxConnections = Int("max.connections", get("max.connections") ?? int.MaxValue.ToString(CultureInfo.InvariantCulture), 0, int.MaxValue),
            MaxConnectionsPerIp = perIp,
            MaxConnectionsPerIpOverrides = overrides,
            ConnectionsMaxIdleMs = Long("connections.max.idle.ms", get("connections.max.idle.ms") ?? "600000", -1, long.MaxValue),
            RequestReceiveTimeoutMs = Long("moldau.request.receive.timeout.ms", get("moldau.request.receive.timeout.ms") ?? "30000", 1, long.MaxValue),
            SaslServerMaxReceiveBytes = Int("sasl.server.max.receive.size", get("sasl.server.max.receive.size") ?? "524288", 1, int.MaxValue),
        };
    }

    // The security protocols a listener may use.
    private static readonly HashSet<string> SupportedProtocols = new(StringComparer.OrdinalIgnoreCase) { "PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL" };

    // A TLS listener's settings (listener.name.<l>.ssl.* first, then ssl.*) and certificates,
    // loaded now so that a bad file stops the start.
    private static TlsServer LoadTls(IReadOnlyDictionary<string, string> props, string listener)
    {
        try
        {
            return TlsServer.Create(TlsSettings.Parse(new ListenerProperties(props, listener).Get));
        }
        catch (TlsConfigException e)
        {
            throw new ConfigException($"listener {listener}: {e.Message}");
        }
    }

    private enum Protocol
    {
        PLAINTEXT,
        SSL,
        SASL_PLAINTEXT,
        SASL_SSL,
    }

    private static Dictionary<string, string> ParseSecurityMap(string text)
    {
        var map = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var colon = entry.IndexOf(':');
            if (colon <= 0 || !Enum.TryParse<Protocol>(entry[(colon + 1)..], ignoreCase: true, out _))
            {
                throw new ConfigException($"listener.security.protocol.map: malformed entry '{entry}' in '{text}'");
            }

            map[entry[..colon]] = entry[(colon + 1)..].ToUpperInvariant();
        }

        return map;
    }

    /// <summary>Parses <c>NAME://host:port</c> entries (host may be empty or a [bracketed] IPv6 address).</summary>
    public static List<ListenerConfig> ParseListeners(string key, string text)
    {
        var result = new List<ListenerConfig>();
        foreach (var entry in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var sep = entry.IndexOf("://", StringComparison.Ordinal);
            var colon = entry.LastIndexOf(':');
            if (sep <= 0 || colon <= sep + 2 || !int.TryParse(entry.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
            {
                throw new ConfigException($"{key}: malformed listener '{entry}' (expected NAME://host:port)");
            }

            var host = entry[(sep + 3)..colon];
            if (host.StartsWith('[') && host.EndsWith(']'))
            {
                host = host[1..^1];
            }

            var name = entry[..sep];
            if (result.Any(r => string.Equals(r.Name, name, StringComparison.OrdinalIgnoreCase)))
            {
                throw new ConfigException($"{key}: listener name '{name}' appears twice in '{text}'");
            }

            result.Add(new ListenerConfig(name.ToUpperInvariant(), host, port));
        }

        return result;
    }

    /// <summary>A log dir as an absolute path; a name the file system can't hold (a NUL in it) is a config error, not a crash.</summary>
    private static string FullPath(string dir)
    {
        try
        {
            return Path.GetFullPath(dir);
        }
        catch (ArgumentException)
        {
            throw new ConfigException($"log.dirs: '{dir.Replace("\0", "\\0", StringComparison.Ordinal)}' is not a usable path");
        }
    }

    private static int Int(string key, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : throw new ConfigException($"{key}: '{value}' is not an integer between {min} and {max}");

    private static long Long(string key, string value, long min, long max) =>
        long.TryParse(value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : throw new ConfigException($"{key}: '{value}' is not an integer between {min} and {max}");

    private static bool Bool(string key, string value) => value.ToLowerInvariant() switch
    {
        "true" => true,
        "false" => false,
        _ => throw new ConfigException($"{key}: '{value}' is not true or false"),
    };
}
