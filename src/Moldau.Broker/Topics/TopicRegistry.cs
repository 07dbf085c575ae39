using Microsoft.Extensions.Logging;
using Moldau.Broker.Configuration;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;
using Moldau.Storage;
using Moldau.Storage.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>
/// Topics and partitions, known by name and by id, as the current <see cref="MetadataImage"/>
/// holds them. The metadata log (an <see cref="IMetadataStore"/>, locally KRaft's
/// <c>__cluster_metadata-0</c>) is the source of truth, and there is one way to change it: a
/// change is a batch of records, appended (synced), then replayed into a
/// <see cref="MetadataDelta"/> by the same code start-up replays the log with; the next image is
/// published by swapping one reference. Readers take the image without a lock; writers take the
/// change lock. The <see cref="PartitionLogApplier"/> opens and deletes logs through the
/// <see cref="ILogManager"/> as partitions come and go.
/// </summary>
internal sealed partial class TopicRegistry : IDisposable
{
    /// <summary>The directory of the metadata log under the first log dir.</summary>
    public const string MetadataLogDirectory = "__cluster_metadata-0";

    /// <summary>ConfigRecord resource type of a topic.</summary>
    public const sbyte TopicResource = MetadataDelta.TopicResource;

    /// <summary>ConfigRecord resource type of a broker (name: node id, or empty for the cluster default).</summary>
    public const sbyte BrokerResource = MetadataDelta.BrokerResource;

    /// <summary>The marker Kafka writes in a log dir after closing all its logs cleanly.</summary>
    public const string CleanShutdownFile = LocalLogManager.CleanShutdownFile;

    /// <summary>Producer ids handed out per ProducerIdsRecord, as Kafka's controller does.</summary>
    public const int ProducerIdBlockSize = 1000;

    private readonly BrokerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly IMetadataStore _store;
    private readonly PartitionLogApplier _applier;
    private readonly Lock _changeLock = new();
    private volatile MetadataImage _image = MetadataImage.Empty;

    /// <summary>
    /// A registry over the local metadata log and log dirs of <paramref name="options"/>, whose logs
    /// use <paramref name="storage"/> (the broker's), or each a runtime of its own when null.
    /// </summary>
    public TopicRegistry(BrokerOptions options, ILogger log, TimeProvider time, StorageRuntime? storage = null)
        : this(
            options,
            log,
            time,
            new MetadataLog(Path.Combine(options.LogDirs[0], MetadataLogDirectory), time, storage),
            new LocalLogManager(options.LogDirs, (configs, state) => LogOptions.For(options, configs, state), time, log, storage))
    {
    }

    /// <summary>A registry over <paramref name="store"/> and <paramref name="logs"/>, which it disposes.</summary>
    public TopicRegistry(BrokerOptions options, ILogger log, TimeProvider time, IMetadataStore store, ILogManager logs)
    {
        _options = options;
        _log = log;
        _time = time;
        _store = store;
        _applier = new PartitionLogApplier(logs, log, time) { SettingsOf = topic => ConfigResolver.LogOptions(ConfigLayersOf(topic)) };
    }

    /// <summary>The current metadata image: take it once per request for a consistent view.</summary>
    public MetadataImage Image => _image;

    /// <summary>Dynamic broker configs from ConfigRecords.</summary>
    public IReadOnlyDictionary<string, string> BrokerConfigs => _image.BrokerConfigs;

    /// <summary>Every topic, unordered.</summary>
    public IEnumerable<TopicInfo> Topics => _image.TopicsByName.Values;

    /// <summary>The topic named <paramref name="name"/>, or null.</summary>
    public TopicInfo? Find(string? name) => _image.Find(name);

    /// <summary>The topic with <paramref name="id"/>, or null.</summary>
    public TopicInfo? Find(Uuid id) => _image.Find(id);

    /// <summary>
    /// Replays the metadata log, batch by batch, up to the first batch that can't be read or
    /// decoded (the store cuts the log there; one log line names where), and publishes the image.
    /// The partitions' logs are opened after, in the background (<see cref="OpenInBackground"/>),
    /// and on demand by whoever needs one first (<see cref="LogOf"/>).
    /// </summary>
    public void Load()
    {
        lock (_changeLock)
        {
            var delta = new MetadataDelta(MetadataImage.Empty, _log);
            var result = _store.Replay(batch => ReplayBatch(delta, batch));
            if (result.Stop is { } stop)
            {
                _log.LogError(
                    "metadata log {File} is corrupt at byte {Position} (from offset {Offset}): {Reason}; replay stops there and the log is cut, dropping everything after it",
                    stop.Location, stop.Position, stop.Offset, stop.Reason);
            }

            var (image, holes) = FillHoles(delta.Apply());
            _holes = holes;
            _image = image;
            _applier.AfterPublish(image.TopicsById.Values.Select(t => ((TopicInfo?)null, (TopicInfo?)t)));
            _log.LogInformation("metadata log: {Records} records, {Topics} topics", result.Records, image.TopicsByName.Count);
            OpenInBackground(image);
        }
    }

    /// <summary>
    /// How many logs open at once at start-up: <c>num.recovery.threads.per.data.dir</c> (default
    /// 2) per log dir.
    /// </summary>
    private int RecoveryThreads =>
        Math.Max(1, int.TryParse(_options.Properties.GetValueOrDefault("num.recovery.threads.per.data.dir"), out var n) && n > 0 ? n : 2) * Math.Max(1, _options.LogDirs.Count);

    /// <summary>Replays one stored batch into <paramref name="delta"/>: all of it, or (a record that doesn't decode) none of it and the reason.</summary>
    private static string? ReplayBatch(MetadataDelta delta, MetadataBatch batch)
    {
        var decoded = new List<(IKafkaMessage? Message, long Offset)>(batch.Records.Count);
        foreach (var record in batch.Records)
        {
            try
            {
                decoded.Add((MetadataDelta.Decode(record.Type, record.Version, record.Body), record.Offset));
            }
            catch (KafkaProtocolException e)
            {
                return $"record type {record.Type} v{record.Version} does not decode: {e.Message}";
            }
        }

        foreach (var (message, offset) in decoded)
        {
            delta.Replay(message, offset);
        }

        return null;
    }

    /// <summary>
    /// A partition missing from the log (a hole, in a log Moldau didn't write) is still served,
    /// from epoch 0, when its log is on disk. Without one, the topic ends before it: a
    /// PartitionRecord with a huge id must not make the broker open thousands of empty logs.
    /// </summary>
    private (MetadataImage Image, HashSet<PartitionHost> Holes) FillHoles(MetadataImage image)
    {
        var holes = new HashSet<PartitionHost>();
        var byName = image.TopicsByName;
        var byId = image.TopicsById;
        foreach (var topic in image.TopicsById.Values)
        {
            var partitions = topic.Partitions;
            var count = partitions.Length;
            for (var i = 0; i < partitions.Length; i++)
            {
                if (partitions[i] is null && !_applier.Logs.Exists(new LogPartition(topic.Name, topic.Id, i)))
                {
                    _log.LogWarning(
                        "metadata log: topic {Topic} names partition {Last} but partition {Missing} has neither a record nor a log: serving partitions 0-{Served} only",
                        topic.Name, partitions.Length - 1, i, i - 1);
                    count = i;
                    break;
                }
            }

            if (count == partitions.Length && partitions.All(p => p is not null))
            {
                continue;
            }

            var filled = new TopicInfo(topic.Name, topic.Id, topic.Configs, t => [.. partitions.Take(count).Select((p, i) =>
            {
                if (p is null)
                {
                    var hole = new PartitionState(t, i, 0) { Leader = _options.NodeId, Isr = [_options.NodeId], Replicas = [_options.NodeId] };
                    holes.Add(hole.Host);
                    return hole;
                }

                return new PartitionState(t, i, p.LeaderEpoch, p.Host) { PartitionEpoch = p.PartitionEpoch, Leader = p.Leader, Isr = p.Isr, Replicas = p.Replicas };
            })]);
            byName = byName.SetItem(filled.Name, filled);
            byId = byId.SetItem(filled.Id, filled);
        }

        return (new MetadataImage(byName, byId, image.BrokerConfigs, image.NextProducerId) { ClientQuotas = image.ClientQuotas, Acls = image.Acls, ScramCredentials = image.ScramCredentials }, holes);
    }

    /// <summary>
    /// The one way metadata changes: <paramref name="records"/> are appended to the metadata log
    /// as one batch (synced), replayed into a delta over <paramref name="image"/> exactly as
    /// start-up replays them, and the next image is made; the logs of partitions it adds are
    /// opened. The caller holds the change lock and publishes.
    /// </summary>
    private (MetadataImage Image, List<(TopicInfo? Before, TopicInfo? After)> Changes) Commit(MetadataImage image, IReadOnlyList<IKafkaMessage> records)
    {
        _store.Append([.. records.Select(Encode)]);
        var delta = new MetadataDelta(image, _log);
        foreach (var record in records)
        {
            delta.Replay(record, -1);
        }

        var next = delta.Apply();
        var changes = delta.Changes(next).ToList();
        _applier.OpenAdded(changes);
        return (next, changes);
    }

    /// <summary><see cref="Commit"/> over the current image, then publishes the result and lets the logs follow it.</summary>
    private MetadataImage CommitAndPublish(IReadOnlyList<IKafkaMessage> records)
    {
        var before = _image;
        var (next, changes) = Commit(before, records);
        _image = next;
        _applier.AfterPublish(changes);
        if (!ReferenceEquals(before.BrokerConfigs, next.BrokerConfigs))
        {
            _applier.ApplyBrokerConfigs(next);
        }

        return next;
    }

    private static MetadataRecord Encode(IKafkaMessage record) => record switch
    {
        TopicRecord r => new MetadataRecord(TopicRecord.SpecApiKey, 0, r.ToBytes(0)),
        PartitionRecord r => new MetadataRecord(PartitionRecord.SpecApiKey, 0, r.ToBytes(0)),
        PartitionChangeRecord r => new MetadataRecord(PartitionChangeRecord.SpecApiKey, 0, r.ToBytes(0)),
        RemoveTopicRecord r => new MetadataRecord(RemoveTopicRecord.SpecApiKey, 0, r.ToBytes(0)),
        ProducerIdsRecord r => new MetadataRecord(ProducerIdsRecord.SpecApiKey, 0, r.ToBytes(0)),
        ConfigRecord r => new MetadataRecord(ConfigRecord.SpecApiKey, 0, r.ToBytes(0)),
        ClientQuotaRecord r => new MetadataRecord(ClientQuotaRecord.SpecApiKey, 0, r.ToBytes(0)),
        AccessControlEntryRecord r => new MetadataRecord(AccessControlEntryRecord.SpecApiKey, 0, r.ToBytes(0)),
        RemoveAccessControlEntryRecord r => new MetadataRecord(RemoveAccessControlEntryRecord.SpecApiKey, 0, r.ToBytes(0)),
        UserScramCredentialRecord r => new MetadataRecord(UserScramCredentialRecord.SpecApiKey, 0, r.ToBytes(0)),
        RemoveUserScramCredentialRecord r => new MetadataRecord(RemoveUserScramCredentialRecord.SpecApiKey, 0, r.ToBytes(0)),
        _ => throw new ArgumentException($"{record.GetType().Name} is not a metadata record this broker writes", nameof(record)),
    };

    /// <summary>A PartitionRecord for a new partition led by this node at epoch 0.</summary>
    private PartitionRecord NewPartition(Uuid topicId, int index) => Catalog is { } catalog
        ? ClusterPartition(catalog, topicId, index)
        : new()
        {
            PartitionId = index,
            TopicId = topicId,
            Replicas = [_options.NodeId],
            Isr = [_options.NodeId],
            Leader = _options.NodeId,
            LeaderEpoch = 0,
            PartitionEpoch = 0,
        };

    /// <summary>
    /// Creates a topic with <paramref name="partitions"/> partitions: its records (TopicRecord,
    /// ConfigRecords, PartitionRecords) go to the metadata log as one batch, then it is visible.
    /// </summary>
    public (ErrorCode Error, TopicInfo? Topic) Create(string name, int partitions, IReadOnlyDictionary<string, string>? configs = null)
    {
        if (InternalTopics.IsReserved(name))
        {
            return (ErrorCode.InvalidRequest, null);
        }

        if (!TopicNames.IsValid(name))
        {
            return (ErrorCode.InvalidTopicException, null);
        }

        if (partitions <= 0)
        {
            return (ErrorCode.InvalidPartitions, null);
        }

        lock (_changeLock)
        {
            if (Find(name) is { } existing)
            {
                return (ErrorCode.TopicAlreadyExists, existing);
            }

            if (CollidesWith(name) is not null)
            {
                return (ErrorCode.InvalidTopicException, null);
            }

            // Cluster mode: the catalog first (the topic exists once PostgreSQL says so), then this
            // broker's image; internal topics stay local to the broker.
            var id = Uuid.NewRandom();
            if (Catalog is { } catalog && !InternalTopics.IsInternal(name))
            {
                if (catalog.CreateTopic(name, partitions, configs ?? new Dictionary<string, string>()) is not { } created)
                {
                    // Created through another broker and not mirrored here yet: mirror it now.
                    Mirror(catalog.ListTopics());
                    return (ErrorCode.TopicAlreadyExists, Find(name));
                }

                id = created;
            }

            var records = new List<IKafkaMessage> { new TopicRecord { Name = name, TopicId = id } };
            foreach (var (key, value) in configs ?? new Dictionary<string, string>())
            {
                records.Add(new ConfigRecord { ResourceType = TopicResource, ResourceName = name, Name = key, Value = value });
            }

            for (var i = 0; i < partitions; i++)
            {
                records.Add(NewPartition(id, i));
            }

            // The logs first, all or none: a partition is never created offline.
            if (_applier.CreateLogs(name, id, configs ?? new Dictionary<string, string>(), Enumerable.Range(0, partitions)) is not null)
            {
                return (ErrorCode.KafkaStorageError, null);
            }

            TopicInfo? topic;
            try
            {
                topic = CommitAndPublish(records).Find(id);
            }
            finally
            {
                _applier.DropCreated();
            }

            _log.LogInformation("created topic {Topic} ({Id}) with {Partitions} partitions", name, id, partitions);
            return (ErrorCode.None, topic);
        }
    }

    /// <summary>
    /// Internal topic <paramref name="name"/> (<see cref="InternalTopics"/>), created on first use
    /// with the broker's own settings for it, as Kafka creates them; null if it could not be.
    /// </summary>
    public TopicInfo? FindOrCreateInternal(string name)
    {
        if (Find(name) is { } existing)
        {
            return existing;
        }

        var (partitions, configs) = InternalTopics.Settings(name, _options);
        return Create(name, partitions, configs).Topic;
    }

    /// <summary>
    /// The existing topic whose name equals <paramref name="name"/> once '.' and '_' are treated
    /// alike (Kafka refuses such a pair: their metric names would collide), or null.
    /// </summary>
    public string? CollidesWith(string name)
    {
        if (!name.Contains('.', StringComparison.Ordinal) && !name.Contains('_', StringComparison.Ordinal))
        {
            return null;
        }

        var unified = name.Replace('.', '_');
        foreach (var other in _image.TopicsByName.Keys)
        {
            if (other != name && other.Length == name.Length && other.Replace('.', '_') == unified)
            {
                return other;
            }
        }

        return null;
    }

    /// <summary>
    /// Hands out the next block of <see cref="ProducerIdBlockSize"/> producer ids: a
    /// ProducerIdsRecord naming where the block after it starts goes to the metadata log
    /// (synced) first, so no id is handed out twice across restarts (Kafka's controller,
    /// answering AllocateProducerIds). The <see cref="ProducerIdManager"/> calls this.
    /// </summary>
    public ProducerIdBlock AllocateProducerIdBlock()
    {
        lock (_changeLock)
        {
            if (Catalog is { } catalog)
            {
                return new ProducerIdBlock(catalog.AllocateProducerIds(ProducerIdBlockSize), ProducerIdBlockSize);
            }

            var first = _image.NextProducerId;
            CommitAndPublish([new ProducerIdsRecord { BrokerId = _options.NodeId, BrokerEpoch = 0, NextProducerId = first + ProducerIdBlockSize }]);
            return new ProducerIdBlock(first, ProducerIdBlockSize);
        }
    }

    /// <summary>
    /// Deletes a topic: a RemoveTopicRecord in the metadata log (synced), then its partition logs
    /// are closed and their data removed.
    /// </summary>
    public ErrorCode Delete(TopicInfo topic)
    {
        lock (_changeLock)
        {
            if (Find(topic.Id) is null)
            {
                return ErrorCode.UnknownTopicOrPartition;
            }

            if (Catalog is { } catalog && !InternalTopics.IsInternal(topic.Name) && !catalog.DeleteTopic(topic.Id))
            {
                return ErrorCode.UnknownTopicOrPartition;
            }

            CommitAndPublish([new RemoveTopicRecord { TopicId = topic.Id }]);
            _log.LogInformation("deleted topic {Topic} ({Id})", topic.Name, topic.Id);
            return ErrorCode.None;
        }
    }

    /// <summary>Grows a topic to <paramref name="count"/> partitions.</summary>
    public ErrorCode AddPartitions(TopicInfo topic, int count)
    {
        lock (_changeLock)
        {
            if (Find(topic.Id) is not { } current)
            {
                return ErrorCode.UnknownTopicOrPartition;
            }

            var have = current.Partitions.Length;
            if (count <= have)
            {
                return ErrorCode.InvalidPartitions;
            }

            if (Catalog is { } catalog && !InternalTopics.IsInternal(current.Name) && !catalog.AddPartitions(current.Id, count))
            {
                return ErrorCode.InvalidPartitions;
            }

            if (_applier.CreateLogs(current.Name, current.Id, current.Configs, Enumerable.Range(have, count - have)) is not null)
            {
                return ErrorCode.KafkaStorageError;
            }

            try
            {
                CommitAndPublish([.. Enumerable.Range(have, count - have).Select(i => NewPartition(topic.Id, i))]);
            }
            finally
            {
                _applier.DropCreated();
            }

            return ErrorCode.None;
        }
    }

    /// <summary>Records config changes of a topic (or of the broker when <paramref name="topic"/> is null) as ConfigRecords; a null value deletes the key.</summary>
    public void SetConfigs(TopicInfo? topic, IReadOnlyList<(string Name, string? Value)> changes)
    {
        if (changes.Count == 0)
        {
            return;
        }

        lock (_changeLock)
        {
            if (topic is not null && Find(topic.Id) is null)
            {
                return;
            }

            // Cluster mode: a topic's configs live in the catalog (every broker mirrors them); the
            // broker's own dynamic configs stay in this broker's memory.
            if (topic is not null && Catalog is { } catalog && !InternalTopics.IsInternal(topic.Name) && !catalog.SetTopicConfigs(topic.Id, changes))
            {
                return;
            }

            var type = topic is null ? BrokerResource : TopicResource;
            var resource = topic?.Name ?? _options.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            CommitAndPublish([.. changes.Select(c => new ConfigRecord { ResourceType = type, ResourceName = resource, Name = c.Name, Value = c.Value })]);
        }
    }

    /// <summary>
    /// Records SCRAM credential changes (UserScramCredentialRecord, RemoveUserScramCredentialRecord)
    /// as one batch in the metadata log (synced), then publishes them; <paramref name="decide"/> runs
    /// under the change lock over the current credentials and returns the records to write.
    /// </summary>
    public T ChangeScramCredentials<T>(Func<ScramCredentialTable, (IReadOnlyList<IKafkaMessage> Records, T Result)> decide)
    {
        lock (_changeLock)
        {
            var (records, result) = decide(_image.ScramCredentials);
            if (records.Count > 0)
            {
                CommitAndPublish(records);
            }

            return result;
        }
    }

    /// <summary>Writes each log's recovery point (<see cref="ILogManager.WriteRecoveryPoints"/>).</summary>
    public void WriteRecoveryPoints() => _applier.Logs.WriteRecoveryPoints();

    /// <summary>Writes how far each compacted log was cleaned (<see cref="ILogManager.WriteCleanerOffsets"/>).</summary>
    public void WriteCleanerOffsets() => _applier.Logs.WriteCleanerOffsets();

    /// <summary>Advances a partition's log start offset and records it durably.</summary>
    public void AdvanceLogStart(IPartitionLog log, long offset) =>
        _applier.Logs.AdvanceLogStart(log, offset);

    /// <summary>Where <paramref name="topic"/>'s config values come from (null: the broker's own).</summary>
    public ConfigLayers ConfigLayersOf(TopicInfo? topic) => new(topic?.Configs, BrokerConfigs, _options.Properties);

    /// <summary>
    /// Stops opening logs (the background pass, and opens on demand once those under way are
    /// done), then closes the metadata log and every partition log that was opened.
    /// </summary>
    public void Dispose()
    {
        StopOpening();
        lock (_changeLock)
        {
            _store.Dispose();
            _applier.Logs.Dispose();
        }
    }
}
