using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Configuration;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;
using Moldau.Storage;
using Moldau.Storage.Metadata;

namespace Moldau.Broker.Topics;

/// <summary>
/// Topics and partitions, known by name and by id. The KRaft metadata log
/// (<c>__cluster_metadata-0</c>) is the source of truth: start-up replays it, and every topic
/// this broker creates is appended to it (and synced) before it becomes visible.
/// </summary>
internal sealed class TopicRegistry : IDisposable
{
    /// <summary>The directory of the metadata log under the first log dir.</summary>
    public const string MetadataLogDirectory = "__cluster_metadata-0";

    /// <summary>ConfigRecord resource type of a topic.</summary>
    public const sbyte TopicResource = 2;

    /// <summary>ConfigRecord resource type of a broker (name: node id, or empty for the cluster default).</summary>
    public const sbyte BrokerResource = 4;

    private readonly BrokerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private readonly ConcurrentDictionary<string, TopicInfo> _byName = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<Uuid, TopicInfo> _byId = new();
    private readonly Lock _changeLock = new();
    private MetadataLogWriter? _metadataLog;
    private readonly HashSet<string> _cleanLogDirs = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Topic, int Partition), long> _recoveryPoints = [];
    private readonly Dictionary<(string Topic, int Partition), long> _cleanerOffsets = [];

    /// <summary>The marker Kafka writes in a log dir after closing all its logs cleanly.</summary>
    public const string CleanShutdownFile = ".kafka_cleanshutdown";

    // Producer ids come in blocks recorded in the metadata log (ProducerIdsRecord), as Kafka's
    // controller hands them out, so ids are never reused after a restart.
    private const long ProducerIdBlockSize = 1000;
    private long _nextProducerId;
    private long _nextProducerIdBlock;

    public TopicRegistry(BrokerOptions options, ILogger log, TimeProvider time)
    {
        _options = options;
        _log = log;
        _time = time;
    }

    /// <summary>Dynamic broker configs from ConfigRecords.</summary>
    public Dictionary<string, string> BrokerConfigs { get; } = new(StringComparer.Ordinal);

    /// <summary>Every topic, unordered.</summary>
    public IEnumerable<TopicInfo> Topics => _byName.Values;

    /// <summary>The topic named <paramref name="name"/>, or null.</summary>
    public TopicInfo? Find(string? name) => name is not null && _byName.TryGetValue(name, out var t) ? t : null;

    /// <summary>The topic with <paramref name="id"/>, or null.</summary>
    public TopicInfo? Find(Uuid id) => _byId.TryGetValue(id, out var t) ? t : null;

    /// <summary>Replays the metadata log and opens every partition's log.</summary>
    public void Load()
    {
        // Kafka's clean-shutdown marker: present means every log in that dir was closed cleanly,
        // so its segments, indexes and producer snapshots are trusted as they are. It goes at
        // once: after a crash from here on, the next start reads the logs through.
        foreach (var logDir in _options.LogDirs)
        {
            foreach (var (key, offset) in LogStartOffsetCheckpoint.Read(logDir, LogStartOffsetCheckpoint.RecoveryPointFileName))
            {
                _recoveryPoints[key] = offset;
            }

            foreach (var (key, offset) in LogStartOffsetCheckpoint.Read(logDir, LogStartOffsetCheckpoint.CleanerOffsetFileName))
            {
                _cleanerOffsets[key] = offset;
            }
        }

        foreach (var logDir in _options.LogDirs.Where(d => File.Exists(Path.Combine(d, CleanShutdownFile))))
        {
            _cleanLogDirs.Add(Path.GetFullPath(logDir));
            File.Delete(Path.Combine(logDir, CleanShutdownFile));
            DirectorySync.Sync(logDir);
        }

        var records = Replay(Path.Combine(_options.LogDirs[0], MetadataLogDirectory));
        var holes = new HashSet<PartitionState>();
        foreach (var topic in _byName.Values)
        {
            var partitions = topic.Partitions;
            for (var i = 0; i < partitions.Length; i++)
            {
                // A partition missing from the log (a hole) is still served, from epoch 0, when
                // its log is on disk. Without one, the topic ends before it: a PartitionRecord
                // with a huge id must not make the broker open thousands of empty logs.
                if (partitions[i] is null && !_options.LogDirs.Any(d => Directory.Exists(Path.Combine(d, $"{topic.Name}-{i}"))))
                {
                    _log.LogWarning(
                        "metadata log: topic {Topic} names partition {Last} but partition {Missing} has neither a record nor a log: serving partitions 0-{Served} only",
                        topic.Name, partitions.Length - 1, i, i - 1);
                    partitions = partitions[..i];
                    topic.Partitions = partitions;
                    break;
                }

                if (partitions[i] is null)
                {
                    partitions[i] = new PartitionState(topic, i, 0) { Leader = _options.NodeId, Isr = [_options.NodeId] };
                    holes.Add(partitions[i]);
                }

                if (partitions[i].Log is null)
                {
                    OpenOrTakeOffline(partitions[i]);
                }
            }
        }

        BumpLeaderEpochsAfterTruncation(holes);
        foreach (var topic in _byName.Values)
        {
            foreach (var p in topic.Partitions)
            {
                p.Log?.StartEpoch(p.LeaderEpoch);
            }
        }

        foreach (var logDir in _options.LogDirs)
        {
            foreach (var ((topicName, partition), offset) in LogStartOffsetCheckpoint.Read(logDir))
            {
                Find(topicName)?.Partition(partition)?.Log?.AdvanceLogStartOffset(offset);
            }
        }

        _log.LogInformation("metadata log: {Records} records, {Topics} topics", records, _byName.Count);
    }

    /// <summary>
    /// Applies the metadata log in <paramref name="directory"/>, batch by batch, up to the first
    /// batch that can't be read or decoded; the log is cut there (one log line naming the file
    /// and offset), as recovery cuts a partition log's torn tail. Returns the records applied.
    /// </summary>
    private int Replay(string directory)
    {
        var contents = MetadataLogReader.Read(directory);
        var corruption = contents.Corruption;
        var applied = 0;
        var batch = new List<(MetadataLogRecord Record, IKafkaMessage? Message)>();
        for (var i = 0; i < contents.Records.Count; i++)
        {
            var record = contents.Records[i];
            try
            {
                batch.Add((record, Decode(record.RecordType, record.RecordVersion, record.Body)));
            }
            catch (KafkaProtocolException e)
            {
                // A batch is applied whole or not at all, so a cut at its start leaves what was applied.
                corruption = new MetadataLogCorruption(record.File ?? directory, record.BatchPosition, record.Offset, $"record type {record.RecordType} v{record.RecordVersion} does not decode: {e.Message}");
                break;
            }

            var next = i + 1 < contents.Records.Count ? contents.Records[i + 1] : default;
            if (next.File == record.File && next.BatchPosition == record.BatchPosition && i + 1 < contents.Records.Count)
            {
                continue;
            }

            foreach (var (r, message) in batch)
            {
                Apply(message, r.Offset);
            }

            applied += batch.Count;
            batch.Clear();
        }

        if (corruption is not null)
        {
            _log.LogError(
                "metadata log {File} is corrupt at byte {Position} (from offset {Offset}): {Reason}; replay stops there and the log is cut, dropping everything after it",
                corruption.File, corruption.Position, corruption.Offset, corruption.Reason);
            if (corruption.File.EndsWith(".log", StringComparison.Ordinal))
            {
                MetadataLogReader.Cut(corruption);
            }
        }

        return applied;
    }

    /// <summary>A metadata record decoded, or null for a type or version this broker doesn't apply.</summary>
    private static IKafkaMessage? Decode(short type, short version, ReadOnlyMemory<byte> body) => type switch
    {
        TopicRecord.SpecApiKey when version <= TopicRecord.HighestVersion => KafkaMessageExtensions.Decode<TopicRecord>(body, version),
        PartitionRecord.SpecApiKey when version <= PartitionRecord.HighestVersion => KafkaMessageExtensions.Decode<PartitionRecord>(body, version),
        PartitionChangeRecord.SpecApiKey when version <= PartitionChangeRecord.HighestVersion => KafkaMessageExtensions.Decode<PartitionChangeRecord>(body, version),
        RemoveTopicRecord.SpecApiKey when version <= RemoveTopicRecord.HighestVersion => KafkaMessageExtensions.Decode<RemoveTopicRecord>(body, version),
        ProducerIdsRecord.SpecApiKey when version <= ProducerIdsRecord.HighestVersion => KafkaMessageExtensions.Decode<ProducerIdsRecord>(body, version),
        ConfigRecord.SpecApiKey when version <= ConfigRecord.HighestVersion => KafkaMessageExtensions.Decode<ConfigRecord>(body, version),

        // FeatureLevelRecord, broker registrations and record types or versions this broker
        // doesn't know: nothing to do for a single node.
        _ => null,
    };

    /// <summary>
    /// Applies one decoded metadata record. What a hostile or broken log could hold is refused
    /// here with a log line, before it reaches the file system: a topic name that is not a legal
    /// one (a '/' or a NUL would make a path) or is the metadata log's own, a partition id
    /// outside 0..<see cref="Handlers.CreateTopicsHandler.MaxPartitions"/>.
    /// </summary>
    private void Apply(IKafkaMessage? message, long offset)
    {
        switch (message)
        {
            case TopicRecord r:
                {
                    if (!TopicNames.IsValid(r.Name) || InternalTopics.IsReserved(r.Name))
                    {
                        _log.LogWarning("metadata log offset {Offset}: TopicRecord with the illegal name {Name} skipped, with its partitions", offset, Printable(r.Name));
                        break;
                    }

                    var topic = new TopicInfo(r.Name, r.TopicId);
                    _byName[r.Name] = topic;
                    _byId[r.TopicId] = topic;
                    break;
                }

            case PartitionRecord r:
                {
                    if (r.PartitionId is < 0 or >= Handlers.CreateTopicsHandler.MaxPartitions)
                    {
                        _log.LogWarning("metadata log offset {Offset}: PartitionRecord with partition id {Id} (outside 0-{Max}) skipped", offset, r.PartitionId, Handlers.CreateTopicsHandler.MaxPartitions - 1);
                        break;
                    }

                    if (_byId.TryGetValue(r.TopicId, out var topic))
                    {
                        var partitions = topic.Partitions;
                        if (r.PartitionId >= partitions.Length)
                        {
                            Array.Resize(ref partitions, r.PartitionId + 1);
                        }

                        partitions[r.PartitionId] = new PartitionState(topic, r.PartitionId, Math.Max(0, r.LeaderEpoch))
                        {
                            PartitionEpoch = Math.Max(0, r.PartitionEpoch),
                            Leader = r.Leader,
                            Isr = r.Isr ?? [],
                        };
                        topic.Partitions = partitions;
                    }

                    break;
                }

            case PartitionChangeRecord r:
                {
                    if (_byId.TryGetValue(r.TopicId, out var topic) && topic.Partition(r.PartitionId) is { } p)
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
                            p.Isr = r.Isr;
                        }

                        p.PartitionEpoch++;
                    }

                    break;
                }

            case RemoveTopicRecord r:
                {
                    if (_byId.TryRemove(r.TopicId, out var topic))
                    {
                        _byName.TryRemove(topic.Name, out _);
                        foreach (var p in topic.Partitions)
                        {
                            p?.Log?.Dispose();
                        }
                    }

                    break;
                }

            case ProducerIdsRecord r:
                {
                    _nextProducerIdBlock = Math.Max(_nextProducerIdBlock, r.NextProducerId);
                    _nextProducerId = _nextProducerIdBlock;
                    break;
                }

            case ConfigRecord r:
                {
                    if (r.ResourceType == BrokerResource)
                    {
                        if (r.Value is null)
                        {
                            BrokerConfigs.Remove(r.Name);
                        }
                        else
                        {
                            BrokerConfigs[r.Name] = r.Value;
                        }
                    }
                    else if (r.ResourceType == TopicResource && _byName.TryGetValue(r.ResourceName, out var topic))
                    {
                        if (r.Value is null)
                        {
                            topic.Configs.Remove(r.Name);
                        }
                        else
                        {
                            topic.Configs[r.Name] = r.Value;
                        }
                    }

                    break;
                }

            default:
                break;
        }
    }

    /// <summary>A name from the log as it can be shown in one log line (control characters escaped, length capped).</summary>
    private static string Printable(string? name) =>
        name is null ? "(null)"
        : "'" + string.Concat(name.Take(TopicNames.MaxLength).Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString())) + (name.Length > TopicNames.MaxLength ? "...'" : "'");

    /// <summary>
    /// Creates a topic with <paramref name="partitions"/> partitions: appends its records to the
    /// metadata log (synced), lays out the partition directories, and makes it visible.
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
            if (_byName.TryGetValue(name, out var existing))
            {
                return (ErrorCode.TopicAlreadyExists, existing);
            }

            if (CollidesWith(name) is not null)
            {
                return (ErrorCode.InvalidTopicException, null);
            }

            var id = Uuid.NewRandom();
            var records = new List<(short Type, short Version, byte[] Body)>
            {
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = name, TopicId = id }.ToBytes(0)),
            };
            foreach (var (key, value) in configs ?? new Dictionary<string, string>())
            {
                records.Add((ConfigRecord.SpecApiKey, 0, new ConfigRecord { ResourceType = TopicResource, ResourceName = name, Name = key, Value = value }.ToBytes(0)));
            }

            for (var i = 0; i < partitions; i++)
            {
                var record = new PartitionRecord
                {
                    PartitionId = i,
                    TopicId = id,
                    Replicas = [_options.NodeId],
                    Isr = [_options.NodeId],
                    Leader = _options.NodeId,
                    LeaderEpoch = 0,
                    PartitionEpoch = 0,
                };
                records.Add((PartitionRecord.SpecApiKey, 0, record.ToBytes(0)));
            }

            MetadataLog().Append(records);

            var topic = new TopicInfo(name, id);
            foreach (var (key, value) in configs ?? new Dictionary<string, string>())
            {
                topic.Configs[key] = value;
            }

            var states = new PartitionState[partitions];
            for (var i = 0; i < partitions; i++)
            {
                states[i] = NewPartition(topic, i);
            }

            topic.Partitions = states;
            _byId[id] = topic;
            _byName[name] = topic;
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
        foreach (var other in _byName.Keys)
        {
            if (other != name && other.Length == name.Length && other.Replace('.', '_') == unified)
            {
                return other;
            }
        }

        return null;
    }

    /// <summary>Hands out a new producer id; a new block is recorded (and synced) when the current one is used up.</summary>
    public long AllocateProducerId()
    {
        lock (_changeLock)
        {
            if (_nextProducerId >= _nextProducerIdBlock)
            {
                var next = _nextProducerIdBlock + ProducerIdBlockSize;
                var record = new ProducerIdsRecord { BrokerId = _options.NodeId, BrokerEpoch = 0, NextProducerId = next };
                MetadataLog().Append([(ProducerIdsRecord.SpecApiKey, 0, record.ToBytes(0))]);
                _nextProducerId = _nextProducerIdBlock;
                _nextProducerIdBlock = next;
            }

            return _nextProducerId++;
        }
    }

    /// <summary>
    /// Deletes a topic: a RemoveTopicRecord in the metadata log (synced), then its partition logs
    /// are closed and their directories removed.
    /// </summary>
    public ErrorCode Delete(TopicInfo topic)
    {
        lock (_changeLock)
        {
            if (!_byId.TryGetValue(topic.Id, out var current) || !ReferenceEquals(current, topic))
            {
                return ErrorCode.UnknownTopicOrPartition;
            }

            MetadataLog().Append([(RemoveTopicRecord.SpecApiKey, 0, new RemoveTopicRecord { TopicId = topic.Id }.ToBytes(0))]);
            _byId.TryRemove(topic.Id, out _);
            _byName.TryRemove(topic.Name, out _);
            foreach (var p in topic.Partitions)
            {
                p.Log?.Dispose();
                p.SignalAppend();
                if (p.Log is { } log)
                {
                    // Kafka renames to "<topic>-<partition>.<id>-delete" and deletes later; the record is
                    // already durable, so the files can go now.
                    try
                    {
                        Directory.Delete(log.Directory, recursive: true);
                    }
                    catch (IOException e)
                    {
                        _log.LogWarning("could not remove {Dir}: {Error}", log.Directory, e.Message);
                    }
                }
            }

            _log.LogInformation("deleted topic {Topic} ({Id})", topic.Name, topic.Id);
            return ErrorCode.None;
        }
    }

    /// <summary>Grows a topic to <paramref name="count"/> partitions.</summary>
    public ErrorCode AddPartitions(TopicInfo topic, int count)
    {
        lock (_changeLock)
        {
            var current = topic.Partitions.Length;
            if (count <= current)
            {
                return ErrorCode.InvalidPartitions;
            }

            var records = new List<(short, short, byte[])>();
            for (var i = current; i < count; i++)
            {
                var record = new PartitionRecord { PartitionId = i, TopicId = topic.Id, Replicas = [_options.NodeId], Isr = [_options.NodeId], Leader = _options.NodeId, LeaderEpoch = 0, PartitionEpoch = 0 };
                records.Add((PartitionRecord.SpecApiKey, 0, record.ToBytes(0)));
            }

            MetadataLog().Append(records);
            var states = topic.Partitions.ToList();
            for (var i = current; i < count; i++)
            {
                states.Add(NewPartition(topic, i));
            }

            topic.Partitions = [.. states];
            return ErrorCode.None;
        }
    }

    /// <summary>Records config changes of a topic (or of the broker when <paramref name="topic"/> is null); a null value deletes the key.</summary>
    public void SetConfigs(TopicInfo? topic, IReadOnlyList<(string Name, string? Value)> changes)
    {
        if (changes.Count == 0)
        {
            return;
        }

        lock (_changeLock)
        {
            var type = topic is null ? BrokerResource : TopicResource;
            var resource = topic?.Name ?? _options.NodeId.ToString(System.Globalization.CultureInfo.InvariantCulture);
            var records = changes.Select(c => ((short)ConfigRecord.SpecApiKey, (short)0, new ConfigRecord { ResourceType = type, ResourceName = resource, Name = c.Name, Value = c.Value }.ToBytes(0))).ToList();
            MetadataLog().Append(records);
            var configs = topic?.Configs ?? BrokerConfigs;
            foreach (var (name, value) in changes)
            {
                if (value is null)
                {
                    configs.Remove(name);
                }
                else
                {
                    configs[name] = value;
                }
            }

            ReconfigureLogs(topic);
        }
    }

    /// <summary>
    /// Writes each log dir's <c>recovery-point-offset-checkpoint</c>: per partition, the offset below
    /// which its log is known to be on disk (Kafka writes it every
    /// <c>log.flush.offset.checkpoint.interval.ms</c> and at shutdown). An unclean start reads
    /// through only the segments past it.
    /// </summary>
    public void WriteRecoveryPoints() =>
        WriteCheckpoints(LogStartOffsetCheckpoint.RecoveryPointFileName, l => l.RecoveryPoint);

    /// <summary>Writes each log dir's <c>cleaner-offset-checkpoint</c>: how far each compacted log was cleaned.</summary>
    public void WriteCleanerOffsets() =>
        WriteCheckpoints(LogStartOffsetCheckpoint.CleanerOffsetFileName, l => l.CleanedUpTo);

    private void WriteCheckpoints(string fileName, Func<PartitionLog, long> offsetOf)
    {
        lock (_changeLock)
        {
            foreach (var logDir in _options.LogDirs)
            {
                var full = Path.GetFullPath(logDir);
                var entries = new Dictionary<(string, int), long>();
                foreach (var t in _byName.Values)
                {
                    foreach (var p in t.Partitions)
                    {
                        if (p?.Log is { } l && Path.GetFullPath(Path.GetDirectoryName(l.Directory)!) == full && offsetOf(l) > 0)
                        {
                            entries[(t.Name, p.Index)] = offsetOf(l);
                        }
                    }
                }

                try
                {
                    LogStartOffsetCheckpoint.Write(logDir, entries, fileName);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    _log.LogWarning("could not write {File} in {LogDir}: {Error}", fileName, logDir, e.Message);
                }
            }
        }
    }

    /// <summary>Advances a partition's log start offset and records it in the log dir's checkpoint.</summary>
    public void AdvanceLogStart(PartitionState partition, long offset)
    {
        lock (_changeLock)
        {
            partition.OpenLog.AdvanceLogStartOffset(offset);
        }

        WriteCheckpoints(LogStartOffsetCheckpoint.FileName, l => l.LogStartOffset);
    }

    /// <summary>A partition just recorded with leader epoch 0, its log opened and the epoch started in it.</summary>
    private PartitionState NewPartition(TopicInfo topic, int index)
    {
        var state = new PartitionState(topic, index, 0) { Leader = _options.NodeId, Isr = [_options.NodeId] };
        OpenOrTakeOffline(state);
        state.Log?.StartEpoch(0);
        return state;
    }

    /// <summary>
    /// A partition whose log lost a torn tail on opening gets a new leader epoch (KIP-101,
    /// KIP-320): the records it lost may have been read under the old epoch, and a client that
    /// validates its position with OffsetForLeaderEpoch learns where that epoch now ends. The
    /// change goes to the metadata log (synced) as a PartitionChangeRecord naming this node as
    /// leader, which is how Kafka's controller bumps an epoch, and is applied by the same replay
    /// a restart runs. A partition the metadata log has no PartitionRecord for gets one instead,
    /// since a change to it would not replay.
    /// </summary>
    private void BumpLeaderEpochsAfterTruncation(HashSet<PartitionState> holes)
    {
        var records = new List<(short Type, short Version, byte[] Body)>();
        foreach (var topic in _byName.Values)
        {
            foreach (var p in topic.Partitions)
            {
                if (p.Log is not { } log || !log.RecoveryLostRecords)
                {
                    continue;
                }

                if (log.CorruptionAfterCleanStop is { } corruption)
                {
                    _log.LogError("{Topic}-{Partition}: {Corruption}; the log goes on from offset {End} under a new leader epoch", topic.Name, p.Index, corruption, log.LogEndOffset);
                }

                _log.LogWarning(
                    "recovery cut {Bytes} bytes from the tail of {Topic}-{Partition} (log end now {End}): leader epoch {Epoch} -> {Next}",
                    log.RecoveredTruncatedBytes, topic.Name, p.Index, log.LogEndOffset, p.LeaderEpoch, p.LeaderEpoch + 1);
                records.Add(holes.Contains(p)
                    ? ((short)PartitionRecord.SpecApiKey, (short)0, new PartitionRecord
                    {
                        PartitionId = p.Index,
                        TopicId = topic.Id,
                        Replicas = [_options.NodeId],
                        Isr = [_options.NodeId],
                        Leader = _options.NodeId,
                        LeaderEpoch = p.LeaderEpoch + 1,
                        PartitionEpoch = p.PartitionEpoch + 1,
                    }.ToBytes(0))
                    : ((short)PartitionChangeRecord.SpecApiKey, (short)0, new PartitionChangeRecord { PartitionId = p.Index, TopicId = topic.Id, Leader = _options.NodeId }.ToBytes(0)));
            }
        }

        if (records.Count == 0)
        {
            return;
        }

        MetadataLog().Append(records);
        var partitions = _byId.Values.SelectMany(t => t.Partitions).ToDictionary(p => (p.Topic.Id, p.Index));
        foreach (var (type, version, body) in records)
        {
            if (type == PartitionRecord.SpecApiKey)
            {
                // Apply would replace the state (and its open log): take the epochs only.
                var r = KafkaMessageExtensions.Decode<PartitionRecord>(body, version);
                var p = partitions[(r.TopicId, r.PartitionId)];
                (p.LeaderEpoch, p.PartitionEpoch) = (r.LeaderEpoch, r.PartitionEpoch);
            }
            else
            {
                Apply(Decode(type, version, body), -1);
            }
        }
    }

    /// <summary>How long an offline partition waits between attempts to open its log.</summary>
    private static readonly TimeSpan RetryOpenInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The partition's log; for an offline partition, tries to open it again (at most every few
    /// seconds), so a partition whose disk was full or unwritable comes back without a restart.
    /// </summary>
    public PartitionLog? LogOf(PartitionState partition)
    {
        if (partition.Log is { } open)
        {
            return open;
        }

        if (!partition.IsOffline || _time.GetTimestamp() < partition.RetryOpenAt)
        {
            return null;
        }

        lock (_changeLock)
        {
            if (partition.Log is null && partition.IsOffline && _time.GetTimestamp() >= partition.RetryOpenAt && Find(partition.Topic.Id) == partition.Topic)
            {
                OpenOrTakeOffline(partition);
            }

            return partition.Log;
        }
    }

    /// <summary>
    /// Opens a partition's log; when the disk refuses (an unwritable directory, a segment that
    /// can't be opened, no space), the partition goes offline instead of taking the broker down,
    /// as Kafka takes a failed log dir offline. One log line when it goes offline, one when it's back.
    /// </summary>
    private void OpenOrTakeOffline(PartitionState partition)
    {
        try
        {
            partition.Log = OpenPartitionLog(partition.Topic, partition.Index);
            if (partition.OfflineReason is not null)
            {
                _log.LogInformation("{Topic}-{Partition} is back online", partition.Topic.Name, partition.Index);
                partition.OfflineReason = null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            if (partition.OfflineReason is null)
            {
                _log.LogError("{Topic}-{Partition} is offline, answering KAFKA_STORAGE_ERROR: its log could not be opened: {Error}", partition.Topic.Name, partition.Index, e.Message);
            }

            partition.OfflineReason = e.Message;
            partition.RetryOpenAt = _time.GetTimestamp() + (long)(RetryOpenInterval.TotalSeconds * _time.TimestampFrequency);
        }
    }

    private MetadataLogWriter MetadataLog() =>
        _metadataLog ??= new MetadataLogWriter(Path.Combine(_options.LogDirs[0], MetadataLogDirectory), _time);

    /// <summary>
    /// Opens the log of one partition: the existing <c>topic-partition</c> directory in whichever
    /// log dir holds it, else a new one in the log dir with the fewest partitions.
    /// </summary>
    private PartitionLog OpenPartitionLog(TopicInfo topic, int index)
    {
        var dirName = $"{topic.Name}-{index}";
        var dir = _options.LogDirs.Select(d => Path.Combine(d, dirName)).FirstOrDefault(Directory.Exists)
            ?? Path.Combine(_options.LogDirs.MinBy(CountPartitions)!, dirName);
        // The topic's effective configs, typed (Configuration/ConfigResolver), plus what opening needs.
        var options = ConfigResolver.LogOptions(ConfigLayersOf(topic)) with
        {
            DirectIo = !string.Equals(_options.Properties.GetValueOrDefault("moldau.log.direct.io"), "false", StringComparison.OrdinalIgnoreCase),
            CleanShutdown = _cleanLogDirs.Contains(Path.GetFullPath(Path.GetDirectoryName(dir)!)),
            RecoveryPoint = _recoveryPoints.GetValueOrDefault((topic.Name, index)),
            CleanedUpTo = _cleanerOffsets.GetValueOrDefault((topic.Name, index)),
        };
        var log = PartitionLog.Open(dir, options, _time);
        try
        {
            if (PartitionMetadataFile.Read(dir) is null)
            {
                PartitionMetadataFile.Write(dir, topic.Id);
            }
        }
        catch
        {
            log.Dispose();
            throw;
        }

        var name = $"{topic.Name}-{index}";
        log.OnStorageErrorChanged = error =>
        {
            if (error is null)
            {
                _log.LogInformation("{Partition}: appends work again", name);
            }
            else
            {
                _log.LogError("{Partition}: append failed, answering KAFKA_STORAGE_ERROR until one succeeds: {Error}", name, error.Message);
            }
        };
        return log;
    }

    /// <summary>Where <paramref name="topic"/>'s config values come from (null: the broker's own).</summary>
    public ConfigLayers ConfigLayersOf(TopicInfo? topic) => new(topic?.Configs, BrokerConfigs, _options.Properties);

    /// <summary>
    /// Gives the open logs of <paramref name="topic"/> (every topic for a broker change, null) the
    /// settings its configs now resolve to: a config change reaches open logs without a restart.
    /// </summary>
    private void ReconfigureLogs(TopicInfo? topic)
    {
        foreach (var t in topic is null ? _byName.Values.ToList() : new List<TopicInfo> { topic })
        {
            var options = ConfigResolver.LogOptions(ConfigLayersOf(t));
            foreach (var p in t.Partitions)
            {
                p?.Log?.Reconfigure(options);
            }
        }
    }

    private static int CountPartitions(string logDir) =>
        Directory.Exists(logDir) ? Directory.GetDirectories(logDir).Length : 0;

    /// <summary>Closes every partition log and the metadata log.</summary>
    public void Dispose()
    {
        var unclean = new HashSet<string>(StringComparer.Ordinal);
        foreach (var topic in _byName.Values)
        {
            foreach (var p in topic.Partitions)
            {
                if (p?.Log is { } log)
                {
                    log.Dispose();
                    if (!log.ClosedCleanly)
                    {
                        unclean.Add(Path.GetFullPath(Path.GetDirectoryName(log.Directory)!));
                    }
                }
            }
        }

        _metadataLog?.Dispose();
        WriteRecoveryPoints();
        WriteCleanerOffsets();
        foreach (var logDir in _options.LogDirs.Where(d => Directory.Exists(d) && !unclean.Contains(Path.GetFullPath(d))))
        {
            try
            {
                File.WriteAllText(Path.Combine(logDir, CleanShutdownFile), "{\"version\":0,\"brokerEpoch\":-1}");
                DirectorySync.Sync(logDir);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _log.LogWarning("could not write the clean-shutdown marker in {LogDir}: {Error}", logDir, e.Message);
            }
        }
    }
}
