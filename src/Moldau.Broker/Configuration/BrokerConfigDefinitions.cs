namespace Moldau.Broker.Configuration;

/// <summary>
/// The broker keys Moldau reads, one definition each, as Kafka's <c>KafkaConfig</c> declares them.
/// The keys that supply a topic config's default (<c>log.segment.bytes</c> for
/// <c>segment.bytes</c>, ...) take their type and bounds from <see cref="TopicConfigDefinitions"/>
/// and are dynamic: AlterConfigs on the broker changes them, and every open log whose topic does
/// not override the key follows at once. Every other key is read-only (server.properties or
/// <c>--override</c>, read at start-up).
/// </summary>
internal static class BrokerConfigDefinitions
{
    private const string IntMax = "2147483647";
    private const string LongMax = "9223372036854775807";

    /// <summary>The definitions, by name, in name order.</summary>
    public static readonly IReadOnlyDictionary<string, ConfigDefinition> All = Build();

    /// <summary>The definition of broker key <paramref name="name"/>, or null.</summary>
    public static ConfigDefinition? Find(string name) => All.GetValueOrDefault(name);

    private static Dictionary<string, ConfigDefinition> Build()
    {
        var list = new List<ConfigDefinition>
        {
            Static("node.id", ConfigType.Int, "1", "This node's id (Moldau's default is 1; Kafka requires it).", min: 0),
            Static("broker.id", ConfigType.Int, "-1", "The older name of node.id, read when node.id is absent.", min: -1),
            Static("listeners", ConfigType.String, "PLAINTEXT://:9092", "The listeners to bind, NAME://host:port, comma-separated."),
            Static("advertised.listeners", ConfigType.String, null, "The endpoints clients are told to connect to, by listener name."),
            Static("listener.security.protocol.map", ConfigType.String, "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT", "Listener name to security protocol: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL."),
            Static("controller.listener.names", ConfigType.String, null, "Listener names for the KRaft controller; Moldau does not bind them."),
            Static("process.roles", ConfigType.List, null, "KRaft roles; a Moldau node is broker and controller at once."),
            Static("log.dirs", ConfigType.List, null, "The log directories; the first holds the metadata log."),
            Static("log.dir", ConfigType.String, "./data", "The log directory when log.dirs is absent (Moldau's default: ./data)."),
            Static("num.partitions", ConfigType.Int, "1", "Partitions of a topic created without a count (auto-created, or -1).", min: 1),
            Static("auto.create.topics.enable", ConfigType.Boolean, "true", "Metadata for an unknown topic creates it."),
            Static("default.replication.factor", ConfigType.Int, "1", "Replicas of an auto-created topic; one node holds one."),
            Static("socket.request.max.bytes", ConfigType.Int, "104857600", "The largest request frame accepted.", min: 1),
            Static("queued.max.request.bytes", ConfigType.Long, "-1", "Request bytes the broker holds at once across connections (Moldau bounds the default, docs/security.md).", min: -1),
            Static("max.connections", ConfigType.Int, IntMax, "Connections the broker accepts at once.", min: 0),
            Static("max.connections.per.ip", ConfigType.Int, IntMax, "Connections one address may hold at once.", min: 0),
            Static("max.connections.per.ip.overrides", ConfigType.String, "", "Per-host limits, host:count, comma-separated."),
            Static("connections.max.idle.ms", ConfigType.Long, "600000", "An idle connection is closed after this long.", min: -1),
            Static("moldau.request.receive.timeout.ms", ConfigType.Long, "30000", "A request still arriving after this long closes its connection (Moldau's own key).", min: 1),
            Static("moldau.log.background.open.delay.ms", ConfigType.Long, "0", "Start-up waits this long before opening partition logs in the background; until then each opens on first use (Moldau's own key, for tests).", min: 0),
            Static("moldau.log.open.files.max", ConfigType.Int, "-1", "Segment files kept open at most; cold ones are closed and reopened on use; -1: half the open-file limit (Moldau's own key).", min: -1),
            Static("moldau.log.direct.io", ConfigType.Boolean, "true", "Segment data written and read with O_DIRECT where the file system allows (Moldau's own key)."),
            Static("group.initial.rebalance.delay.ms", ConfigType.Int, "3000", "How long the first rebalance of an empty group waits for more members.", min: 0),
            Static("group.min.session.timeout.ms", ConfigType.Int, "6000", "The shortest session timeout a member may ask for.", min: 0),
            Static("group.max.session.timeout.ms", ConfigType.Int, "1800000", "The longest session timeout a member may ask for.", min: 0),
            Static("group.max.size", ConfigType.Int, IntMax, "Members one group may hold.", min: 1),
            Static("offsets.topic.num.partitions", ConfigType.Int, "50", "Partitions of __consumer_offsets.", min: 1),
            Static("offsets.topic.segment.bytes", ConfigType.Int, "104857600", "segment.bytes of __consumer_offsets.", min: 1),
            Static("offsets.topic.replication.factor", ConfigType.Short, "3", "Replicas of __consumer_offsets; one node holds one.", min: 1),
            Static("transaction.state.log.num.partitions", ConfigType.Int, "50", "Partitions of __transaction_state.", min: 1),
            Static("transaction.state.log.segment.bytes", ConfigType.Int, "104857600", "segment.bytes of __transaction_state.", min: 1),
            Static("transaction.state.log.replication.factor", ConfigType.Short, "3", "Replicas of __transaction_state; one node holds one.", min: 1),
            Static("transaction.state.log.min.isr", ConfigType.Int, "2", "min.insync.replicas of __transaction_state.", min: 1),
            Static("transaction.max.timeout.ms", ConfigType.Int, "900000", "The longest transaction.timeout.ms a producer may ask for (INVALID_TRANSACTION_TIMEOUT beyond).", min: 1),
            Static("transactional.id.expiration.ms", ConfigType.Int, "604800000", "A transactional id with no transaction open is forgotten after this long without a change.", min: 1),
            Static("transaction.abort.timed.out.transaction.cleanup.interval.ms", ConfigType.Int, "10000", "How often transactions open past their timeout are looked for and aborted.", min: 1),
            Static("transaction.remove.expired.transaction.cleanup.interval.ms", ConfigType.Int, "3600000", "How often expired transactional ids are looked for.", min: 1),
            Static("transaction.partition.verification.enable", ConfigType.Boolean, "true", "A transactional batch is appended only to a partition of its producer's open transaction (KIP-890)."),
            Static("log.retention.check.interval.ms", ConfigType.Long, "300000", "How often retention runs.", min: 1),
            Static("log.flush.offset.checkpoint.interval.ms", ConfigType.Int, "60000", "How often the recovery points are written.", min: 0),
            Static("log.cleaner.enable", ConfigType.Boolean, "true", "Compacted topics are cleaned."),
            Static("log.cleaner.backoff.ms", ConfigType.Long, "15000", "How often the cleaner looks for logs to clean.", min: 0),
            Static("num.network.threads", ConfigType.Int, "3", "Kafka's network threads; Moldau's I/O is asynchronous and does not size pools by it.", min: 1),
            Static("num.io.threads", ConfigType.Int, "8", "Kafka's request threads; Moldau does not size pools by it.", min: 1),
            Static("num.recovery.threads.per.data.dir", ConfigType.Int, "2", "Partition logs opened (and recovered) at once per log dir at start-up.", min: 1),
            Static("socket.send.buffer.bytes", ConfigType.Int, "102400", "Kafka's SO_SNDBUF; Moldau leaves the system's."),
            Static("socket.receive.buffer.bytes", ConfigType.Int, "102400", "Kafka's SO_RCVBUF; Moldau leaves the system's."),
            Static("delete.topic.enable", ConfigType.Boolean, "true", "Topics may be deleted."),
        };

        // The keys that supply topic defaults, with the topic key's type and bounds (Kafka's
        // synonyms), except the secondary ones in other units, which have their own.
        foreach (var topic in TopicConfigDefinitions.All.Values)
        {
            foreach (var synonym in topic.Synonyms)
            {
                if (list.Any(d => d.Name == synonym.Name))
                {
                    continue;
                }

                list.Add(synonym.Name switch
                {
                    // Kafka leaves these unset by default: the next synonym supplies the value.
                    "log.retention.ms" or "log.roll.ms" or "log.roll.jitter.ms" or "log.flush.interval.ms" => Dynamic(topic, synonym.Name, null),
                    "log.retention.minutes" => Dynamic(topic, synonym.Name, null, ConfigType.Int, min: null),
                    "log.retention.hours" => Dynamic(topic, synonym.Name, "168", ConfigType.Int, min: null),
                    "log.roll.hours" => Dynamic(topic, synonym.Name, "168", ConfigType.Int, min: 1),
                    "log.roll.jitter.hours" => Dynamic(topic, synonym.Name, "0", ConfigType.Int, min: 0),
                    "log.flush.scheduler.interval.ms" => Dynamic(topic, synonym.Name, LongMax),
                    _ => Dynamic(topic, synonym.Name, topic.Default),
                });
            }
        }

        return list.OrderBy(d => d.Name, StringComparer.Ordinal).ToDictionary(d => d.Name, StringComparer.Ordinal);
    }

    private static ConfigDefinition Static(string name, ConfigType type, string? value, string doc, double? min = null) =>
        new() { Name = name, Type = type, Default = value, Documentation = doc, Min = min, Dynamic = false };

    private static ConfigDefinition Dynamic(ConfigDefinition topic, string name, string? value) =>
        topic with { Name = name, Default = value, Synonyms = [], Documentation = $"The default of the topic config {topic.Name}. {topic.Documentation}" };

    private static ConfigDefinition Dynamic(ConfigDefinition topic, string name, string? value, ConfigType type, double? min) =>
        Dynamic(topic, name, value) with { Type = type, Min = min, Max = null };
}

/// <summary>The broker definitions as the executable uses them on server.properties and <c>--override</c>.</summary>
public static class BrokerProperties
{
    /// <summary>Null when <paramref name="value"/> suits <paramref name="key"/>'s definition (or Moldau has none), else the message.</summary>
    public static string? Validate(string key, string value) => BrokerConfigDefinitions.Find(key)?.Validate(value);

    /// <summary>True for a key Moldau has a definition for.</summary>
    public static bool IsKnown(string key) => BrokerConfigDefinitions.Find(key) is not null;
}
