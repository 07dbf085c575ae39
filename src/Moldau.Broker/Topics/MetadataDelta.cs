using System.Collections.Frozen;
using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>
/// The changes a run of metadata records makes to a <see cref="MetadataImage"/> (Kafka's
/// <c>MetadataDelta</c>): <see cref="Replay"/> each record in log order, then <see cref="Apply"/>
/// makes the next image. Start-up replays the whole log into one delta; a live change appends
/// its records and replays them into a delta over the current image: the same code either way.
/// What a hostile or broken log could hold is refused here with a log line, before it can reach
/// the file system: a topic name that is not a legal one (a '/' or a NUL would make a path) or is
/// the metadata log's own, a partition id outside 0..<see cref="Handlers.CreateTopicsHandler.MaxPartitions"/>.
/// </summary>
internal sealed class MetadataDelta(MetadataImage image, ILogger log)
{
    /// <summary>ConfigRecord resource type of a topic.</summary>
    public const sbyte TopicResource = 2;

    /// <summary>ConfigRecord resource type of a broker (name: node id, or empty for the cluster default).</summary>
    public const sbyte BrokerResource = 4;

    // Topics touched by this delta, by id (null: removed), and names whose topic changed.
    private readonly Dictionary<Uuid, TopicBuilder?> _topics = [];
    private readonly Dictionary<string, Uuid?> _names = new(StringComparer.Ordinal);
    private Dictionary<string, string>? _brokerConfigs;
    private long _nextProducerId = image.NextProducerId;
    private ClientQuotaTable.Builder? _quotas;
    private AclChanges? _acls;
    private ScramCredentialTable? _scram;

    /// <summary>The image this delta changes.</summary>
    public MetadataImage Image { get; } = image;

    /// <summary>The records replayed into this delta.</summary>
    public int Records { get; private set; }

    /// <summary>
    /// A metadata record decoded, or null for a type or version this broker doesn't apply
    /// (FeatureLevelRecord, broker registrations, newer versions: nothing to do for a single node).
    /// </summary>
    /// <exception cref="KafkaProtocolException">The body doesn't decode.</exception>
    public static IKafkaMessage? Decode(short type, short version, ReadOnlyMemory<byte> body) => type switch
    {
        TopicRecord.SpecApiKey when version <= TopicRecord.HighestVersion => KafkaMessageExtensions.Decode<TopicRecord>(body, version),
        PartitionRecord.SpecApiKey when version <= PartitionRecord.HighestVersion => KafkaMessageExtensions.Decode<PartitionRecord>(body, version),
        PartitionChangeRecord.SpecApiKey when version <= PartitionChangeRecord.HighestVersion => KafkaMessageExtensions.Decode<PartitionChangeRecord>(body, version),
        RemoveTopicRecord.SpecApiKey when version <= RemoveTopicRecord.HighestVersion => KafkaMessageExtensions.Decode<RemoveTopicRecord>(body, version),
        ProducerIdsRecord.SpecApiKey when version <= ProducerIdsRecord.HighestVersion => KafkaMessageExtensions.Decode<ProducerIdsRecord>(body, version),
        ConfigRecord.SpecApiKey when version <= ConfigRecord.HighestVersion => KafkaMessageExtensions.Decode<ConfigRecord>(body, version),
        ClientQuotaRecord.SpecApiKey when version <= ClientQuotaRecord.HighestVersion => KafkaMessageExtensions.Decode<ClientQuotaRecord>(body, version),
        AccessControlEntryRecord.SpecApiKey when version <= AccessControlEntryRecord.HighestVersion => KafkaMessageExtensions.Decode<AccessControlEntryRecord>(body, version),
        RemoveAccessControlEntryRecord.SpecApiKey when version <= RemoveAccessControlEntryRecord.HighestVersion => KafkaMessageExtensions.Decode<RemoveAccessControlEntryRecord>(body, version),
        UserScramCredentialRecord.SpecApiKey when version <= UserScramCredentialRecord.HighestVersion => KafkaMessageExtensions.Decode<UserScramCredentialRecord>(body, version),
        RemoveUserScramCredentialRecord.SpecApiKey when version <= RemoveUserScramCredentialRecord.HighestVersion => KafkaMessageExtensions.Decode<RemoveUserScramCredentialRecord>(body, version),
        _ => null,
    };

    /// <summary>Replays one decoded record (null: a record this broker doesn't apply); <paramref name="offset"/> only names it in log lines.</summary>
    public void Replay(IKafkaMessage? record, long offset)
    {
        Records++;
        switch (record)
        {
            case TopicRecord r:
                if (!TopicNames.IsValid(r.Name) || InternalTopics.IsReserved(r.Name))
                {
                    log.LogWarning("metadata log offset {Offset}: TopicRecord with the illegal name {Name} skipped, with its partitions", offset, Printable(r.Name));
                    break;
                }

                // A name or id seen again replaces what it named: one topic per name, one per id.
                if (IdOf(r.Name) is { } previous)
                {
                    Remove(previous);
                }

                Remove(r.TopicId);
                _topics[r.TopicId] = new TopicBuilder(r.Name, r.TopicId);
                _names[r.Name] = r.TopicId;
                break;

            case PartitionRecord r:
                if (r.PartitionId is < 0 or >= Handlers.CreateTopicsHandler.MaxPartitions)
                {
                    log.LogWarning("metadata log offset {Offset}: PartitionRecord with partition id {Id} (outside 0-{Max}) skipped", offset, r.PartitionId, Handlers.CreateTopicsHandler.MaxPartitions - 1);
                    break;
                }

                if (Topic(r.TopicId) is { } topic)
                {
                    while (topic.Partitions.Count <= r.PartitionId)
                    {
                        topic.Partitions.Add(null);
                    }

                    topic.Partitions[r.PartitionId] = new PartitionBuilder
                    {
                        // The same partition recorded again keeps its log.
                        Host = topic.Partitions[r.PartitionId]?.Host ?? new PartitionHost(),
                        LeaderEpoch = Math.Max(0, r.LeaderEpoch),
                        PartitionEpoch = Math.Max(0, r.PartitionEpoch),
                        Leader = r.Leader,
                        Isr = Nodes(r.Isr),
                        Replicas = Nodes(r.Replicas),
                    };
                }

                break;

            case PartitionChangeRecord r:
                if (Topic(r.TopicId) is { } changed && r.PartitionId >= 0 && r.PartitionId < changed.Partitions.Count && changed.Partitions[r.PartitionId] is { } p)
                {
                    // As Kafka's replay: a leader named (Leader != -2, "no change"), even the same
                    // one, starts a new leader epoch; every change bumps the partition epoch.
                    if (r.Leader != -2)
                    {
                        p.Leader = r.Leader;
                        p.LeaderEpoch++;
                    }

                    if (r.Isr is not null)
                    {
                        p.Isr = [.. r.Isr];
                    }

                    if (r.Replicas is not null)
                    {
                        p.Replicas = [.. r.Replicas];
                    }

                    p.PartitionEpoch++;
                }

                break;

            case RemoveTopicRecord r:
                Remove(r.TopicId);
                break;

            case ProducerIdsRecord r:
                _nextProducerId = Math.Max(_nextProducerId, r.NextProducerId);
                break;

            case ConfigRecord r:
                var configs = r.ResourceType switch
                {
                    BrokerResource => _brokerConfigs ??= new Dictionary<string, string>(Image.BrokerConfigs, StringComparer.Ordinal),
                    TopicResource when IdOf(r.ResourceName) is { } id => Topic(id)?.Configs,
                    _ => null,
                };
                if (configs is null)
                {
                    break;
                }

                if (r.Value is null)
                {
                    configs.Remove(r.Name);
                }
                else
                {
                    configs[r.Name] = r.Value;
                }

                break;

            case ClientQuotaRecord r:
                if (!(_quotas ??= new ClientQuotaTable.Builder(Image.ClientQuotas)).Replay(r))
                {
                    log.LogWarning("metadata log offset {Offset}: ClientQuotaRecord with an unknown or repeated entity type skipped", offset);
                }

                break;

            case AccessControlEntryRecord r:
                if (AclBinding.From(r) is { } acl)
                {
                    (_acls ??= new()).Replay(acl);
                }
                else
                {
                    log.LogWarning("metadata log offset {Offset}: AccessControlEntryRecord {Id} is not a valid ACL, skipped", offset, r.Id);
                }

                break;

            case RemoveAccessControlEntryRecord r:
                (_acls ??= new()).Remove(r.Id);
                break;

            case UserScramCredentialRecord r:
                _scram = (_scram ?? Image.ScramCredentials).With(r);
                break;

            case RemoveUserScramCredentialRecord r:
                _scram = (_scram ?? Image.ScramCredentials).Without(r);
                break;

            default:
                break;
        }
    }

    /// <summary>
    /// The image this delta makes. Topics it didn't touch are the same objects as before; a topic
    /// it touched is made anew, its partitions keeping their hosts. A partition no record named
    /// below the highest one that was (a hole, only in a log Moldau didn't write) is left null
    /// here, for start-up to fill or cut (<see cref="TopicRegistry.Load"/>).
    /// </summary>
    public MetadataImage Apply()
    {
        var byName = Image.TopicsByName.ToBuilder();
        var byId = Image.TopicsById.ToBuilder();
        foreach (var id in _topics.Keys)
        {
            if (byId.TryGetValue(id, out var old))
            {
                byId.Remove(id);
                if (byName.TryGetValue(old.Name, out var named) && named.Id == id)
                {
                    byName.Remove(old.Name);
                }
            }
        }

        foreach (var (id, builder) in _topics)
        {
            if (builder is not null)
            {
                var topic = builder.Build();
                byId[id] = topic;
                byName[topic.Name] = topic;
            }
        }

        return new MetadataImage(
            byName.ToImmutable(),
            byId.ToImmutable(),
            _brokerConfigs?.ToFrozenDictionary(StringComparer.Ordinal) ?? Image.BrokerConfigs,
            _nextProducerId)
        {
            ClientQuotas = _quotas?.Build() ?? Image.ClientQuotas,
            Acls = _acls?.Apply(Image.Acls) ?? Image.Acls,
            ScramCredentials = _scram ?? Image.ScramCredentials,
        };
    }

    /// <summary>The topics this delta adds, changes or removes: (before, after), either null for an added or removed one.</summary>
    public IEnumerable<(TopicInfo? Before, TopicInfo? After)> Changes(MetadataImage after) =>
        _topics.Keys.Select(id => (Image.Find(id), after.Find(id))).Where(c => c.Item1 is not null || c.Item2 is not null);

    /// <summary>A name from the log as it can be shown in one log line (control characters escaped, length capped).</summary>
    public static string Printable(string? name) =>
        name is null ? "(null)"
        : "'" + string.Concat(name.Take(TopicNames.MaxLength).Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())) + (name.Length > TopicNames.MaxLength ? "...'" : "'");

    /// <summary>
    /// A copy of a node list; a list of one node is one shared instance per node (the common case on
    /// a single node: 112 bytes less per partition than a copy of its own).
    /// </summary>
    private static IReadOnlyList<int> Nodes(List<int>? nodes) =>
        nodes is [var node] && node is >= 0 and < 1024 ? OneNode.GetOrAdd(node, static n => [n]) : [.. nodes ?? []];

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, IReadOnlyList<int>> OneNode = new();

    private Uuid? IdOf(string name) =>
        _names.TryGetValue(name, out var id) ? id
        : Image.TopicsByName.TryGetValue(name, out var topic) ? topic.Id
        : null;

    private TopicBuilder? Topic(Uuid id)
    {
        if (_topics.TryGetValue(id, out var builder))
        {
            return builder;
        }

        if (!Image.TopicsById.TryGetValue(id, out var topic))
        {
            return null;
        }

        return _topics[id] = new TopicBuilder(topic);
    }

    private void Remove(Uuid id)
    {
        if (Topic(id) is { } topic)
        {
            _topics[id] = null;
            if (IdOf(topic.Name) == id)
            {
                _names[topic.Name] = null;
            }
        }
    }

    /// <summary>A topic being changed.</summary>
    private sealed class TopicBuilder
    {
        public TopicBuilder(string name, Uuid id)
        {
            Name = name;
            Id = id;
        }

        public TopicBuilder(TopicInfo topic)
        {
            Name = topic.Name;
            Id = topic.Id;
            Configs = new Dictionary<string, string>(topic.Configs, StringComparer.Ordinal);
            Partitions = [.. topic.Partitions.Select(p => p is null ? null : new PartitionBuilder
            {
                Host = p.Host,
                LeaderEpoch = p.LeaderEpoch,
                PartitionEpoch = p.PartitionEpoch,
                Leader = p.Leader,
                Isr = p.Isr,
                Replicas = p.Replicas,
            })];
        }

        public string Name { get; }

        public Uuid Id { get; }

        public Dictionary<string, string> Configs { get; } = new(StringComparer.Ordinal);

        public List<PartitionBuilder?> Partitions { get; } = [];

        public TopicInfo Build() => new(
            Name,
            Id,
            Configs.ToFrozenDictionary(StringComparer.Ordinal),
            topic => [.. Partitions.Select((p, i) => p?.Build(topic, i)!)]);
    }

    /// <summary>A partition being changed.</summary>
    private sealed class PartitionBuilder
    {
        public required PartitionHost Host { get; init; }

        public int LeaderEpoch { get; set; }

        public int PartitionEpoch { get; set; }

        public int Leader { get; set; }

        public IReadOnlyList<int> Isr { get; set; } = [];

        public IReadOnlyList<int> Replicas { get; set; } = [];

        public PartitionState Build(TopicInfo topic, int index) =>
            new(topic, index, LeaderEpoch, Host) { PartitionEpoch = PartitionEpoch, Leader = Leader, Isr = Isr, Replicas = Replicas };
    }
}
