namespace Moldau.Broker;

/// <summary>The broker's settings, read from Kafka's server.properties keys.</summary>
public sealed class BrokerOptions
{
    /// <summary>node.id</summary>
    public int NodeId { get; set; } = 1;

    /// <summary>log.dirs (or log.dir); the first one holds the metadata log.</summary>
    public IReadOnlyList<string> LogDirs { get; set; } = ["./data"];

    /// <summary>num.partitions</summary>
    public int NumPartitions { get; set; } = 1;

    /// <summary>auto.create.topics.enable</summary>
    public bool AutoCreateTopicsEnable { get; set; } = true;

    /// <summary>message.max.bytes: the largest record batch a producer may send.</summary>
    public int MessageMaxBytes { get; set; } = 1048588;

    /// <summary>log.segment.bytes: roll to a new segment beyond this size.</summary>
    public long LogSegmentBytes { get; set; } = 1L << 30;

    /// <summary>socket.request.max.bytes: the largest request frame accepted.</summary>
    public int SocketRequestMaxBytes { get; set; } = 104857600;

    /// <summary>group.initial.rebalance.delay.ms</summary>
    public int GroupInitialRebalanceDelayMs { get; set; } = 3000;

    /// <summary>group.min.session.timeout.ms</summary>
    public int GroupMinSessionTimeoutMs { get; set; } = 6000;

    /// <summary>group.max.session.timeout.ms</summary>
    public int GroupMaxSessionTimeoutMs { get; set; } = 1800000;

    /// <summary>group.max.size</summary>
    public int GroupMaxSize { get; set; } = int.MaxValue;

    /// <summary>offsets.topic.num.partitions</summary>
    public int OffsetsTopicNumPartitions { get; set; } = 50;

    /// <summary>Every server.properties key and value as given, for settings read later.</summary>
    public IReadOnlyDictionary<string, string> Properties { get; set; } = new Dictionary<string, string>();

    /// <summary>The endpoints clients are told to connect to (advertised.listeners, resolved).</summary>
    public IReadOnlyList<AdvertisedEndpoint> AdvertisedEndpoints { get; set; } = [];
}

/// <summary>One advertised endpoint.</summary>
/// <param name="ListenerName">e.g. PLAINTEXT</param>
/// <param name="Host">Host name clients connect to.</param>
/// <param name="Port">Port clients connect to.</param>
public sealed record AdvertisedEndpoint(string ListenerName, string Host, int Port);
