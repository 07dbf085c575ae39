using Microsoft.Extensions.Logging;
using Moldau.Broker.Handlers;
using Moldau.Broker.Retention;
using Moldau.Broker.Topics;
using Moldau.Broker.Transactions;
using Moldau.Coordinator;
using Moldau.Coordinator.Transactions;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Storage;

namespace Moldau.Broker;

/// <summary>
/// The broker: owns the topic registry, the coordinator and the request pipeline that turns
/// request frames into response frames (one handler per API in Handlers/, registered in
/// <see cref="ApiRegistry"/>).
/// </summary>
public sealed class KafkaBroker : IRequestDispatcher, IAsyncDisposable
{
    private readonly BrokerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private BrokerState? _state;

    /// <summary>The shared state the handlers see (tests reach the logs through it).</summary>
    internal BrokerState State => _state ?? throw new InvalidOperationException("not started");
    private GroupCoordinator? _groups;
    private TransactionCoordinator? _transactions;
    private RequestPipeline? _pipeline;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _retention;
    private Task? _cleaner;
    private Task? _checkpoints;
    private readonly List<LogDirectoryLock> _dirLocks = [];
    private Cluster.ClusterMode? _cluster;

    // The storage engine's buffers, threads and timers for this broker's logs alone: closed after them.
    private readonly StorageRuntime _storage;

    /// <summary>The storage runtime this broker's logs share, disposed with the broker.</summary>
    internal StorageRuntime Storage => _storage;

    /// <summary>Creates a broker over <paramref name="options"/>; call <see cref="Start"/> before serving.</summary>
    public KafkaBroker(BrokerOptions options, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _log = loggers.CreateLogger("Moldau.Broker");
        _time = time;
        var openFiles = options.Properties.GetValueOrDefault("moldau.log.open.files.max");
        _storage = new StorageRuntime(int.TryParse(openFiles, System.Globalization.CultureInfo.InvariantCulture, out var max) ? max : -1);
        Metrics = new Metrics.BrokerMetrics();
    }

    /// <summary>The broker's metrics (the HTTP listener exports them; the connections record request times into them).</summary>
    public Metrics.BrokerMetrics Metrics { get; }

    /// <summary>
    /// Ready to serve (/health/ready): started, and the background open of the partition logs
    /// found at start-up is done. Cluster mode adds its own checks (database, object store) to
    /// the HTTP listener's readiness.
    /// </summary>
    public bool Ready => _state is { } state && state.Topics.BackgroundOpening.IsCompleted && _pipeline is not null;

    /// <summary>Brings the metrics that can't be read synchronously (group lag) up to date before a scrape.</summary>
    public Task RefreshMetricsAsync(CancellationToken cancellationToken) =>
        _groups is { } groups && _state is not null ? Metrics.RefreshGroupLagAsync(groups, cancellationToken) : Task.CompletedTask;

    /// <summary>Reads meta.properties and the metadata log; the partition logs open in the background and on demand.</summary>
    public void Start()
    {
        // Kafka's .lock in every log dir before anything is written there: a second broker on the
        // same directories stops here (LogDirectoryInUseException) and leaves them as they were.
        foreach (var dir in _options.LogDirs)
        {
            Directory.CreateDirectory(dir);
            try
            {
                _dirLocks.Add(LogDirectoryLock.Acquire(dir));
            }
            catch
            {
                ReleaseLogDirs();
                throw;
            }
        }

        var clusterId = ClusterIdentity.LoadOrCreate(_options.LogDirs, _options.NodeId);

        // Cluster mode when moldau.cluster.postgres.connection is set (docs/cluster.md): topics from
        // PostgreSQL, record data in the object store; only the internal topics stay in log.dirs.
        _cluster = Cluster.ClusterMode.StartAsync(_options, clusterId, _time, _log).GetAwaiter().GetResult();
        TopicRegistry topics;
        if (_cluster is { } cluster)
        {
            clusterId = cluster.ClusterId;
            var local = new LocalLogManager(_options.LogDirs, (configs, state) => LogOptions.For(_options, configs, state), _time, _log, _storage);
            var logs = new Cluster.ClusterLogManager(local, cluster.Data, configs => LogOptions.For(_options, configs, default));
            topics = new TopicRegistry(_options, _log, _time, new Cluster.VolatileMetadataStore(), logs) { Catalog = cluster };
            topics.Load();
            cluster.Attach(topics);
        }
        else
        {
            topics = new TopicRegistry(_options, _log, _time, _storage);
            topics.Load();
        }

        _state = new BrokerState(_options, topics, clusterId, _time, _log)
        {
            Cluster = _cluster,
            GroupOffsets = _cluster,
            Authorizer = Authorization.AclAuthorizer.FromProperties(_options.Properties, () => topics.Image.Acls),
            Metrics = Metrics,
            VerifyTransactionalPartitions = !string.Equals(_options.Properties.GetValueOrDefault("transaction.partition.verification.enable"), "false", StringComparison.OrdinalIgnoreCase),
        };
        // Groups are placed by the partition count __consumer_offsets has, as Kafka places them,
        // so a topic made with another count (by an older Moldau, from num.partitions) still
        // serves every group; offsets.topic.num.partitions applies when the broker creates it.
        var existing = topics.Find(OffsetsTopic.Name);
        var offsetsPartitions = existing is { Partitions.Length: > 0 } ? existing.Partitions.Length : _options.OffsetsTopicNumPartitions;
        if (offsetsPartitions != _options.OffsetsTopicNumPartitions)
        {
            _log.LogWarning("{Topic} has {Partitions} partitions, not offsets.topic.num.partitions={Configured}: groups are placed over the {Partitions} it has", OffsetsTopic.Name, offsetsPartitions, _options.OffsetsTopicNumPartitions, offsetsPartitions);
        }

        _groups = new GroupCoordinator(
            new GroupCoordinatorOptions
            {
                InitialRebalanceDelayMs = _options.GroupInitialRebalanceDelayMs,
                MinSessionTimeoutMs = _options.GroupMinSessionTimeoutMs,
                MaxSessionTimeoutMs = _options.GroupMaxSessionTimeoutMs,
                MaxSize = _options.GroupMaxSize,
                OffsetsTopicPartitions = offsetsPartitions,
                OffsetsRetentionMs = long.TryParse(_options.Properties.GetValueOrDefault("offsets.retention.minutes"), out var retention) && retention > 0 ? retention * 60_000 : 7L * 24 * 60 * 60_000,
                OffsetsRetentionCheckIntervalMs = long.TryParse(_options.Properties.GetValueOrDefault("offsets.retention.check.interval.ms"), out var check) && check > 0 ? check : 600_000,
                ConsumerSessionTimeoutMs = int.TryParse(_options.Properties.GetValueOrDefault("group.consumer.session.timeout.ms"), out var cst) && cst > 0 ? cst : 45_000,
                ConsumerHeartbeatIntervalMs = int.TryParse(_options.Properties.GetValueOrDefault("group.consumer.heartbeat.interval.ms"), out var chi) && chi > 0 ? chi : 5_000,
                ConsumerAssignors = _options.Properties.GetValueOrDefault("group.consumer.assignors") is { Length: > 0 } assignors
                    ? [.. assignors.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries).Where(a => a is "uniform" or "range")]
                    : ["uniform", "range"],
                ConsumerMaxSize = int.TryParse(_options.Properties.GetValueOrDefault("group.consumer.max.size"), out var cms) && cms > 0 ? cms : int.MaxValue,
            },
            OffsetsPartition,
            (topic, partition) => topics.Find(topic)?.Partition(partition) is not null,
            _time,
            _log)
        {
            Topics = new Topics.GroupTopics(topics),
        };

        // The __consumer_offsets logs are opened now (on demand, ahead of the background pass). An
        // offline partition (its log could not be opened) is skipped: its groups start empty.
        _groups.Start(existing is null ? [] : existing.Partitions.Where(p => topics.LogOf(p) is not null).Select(p => p.Index));
        StartTransactions(topics);
        _pipeline = new RequestPipeline(ApiRegistry.All, new HandlerServices(_state, _groups, () => OffsetsTopicInfo() is not null), _log) { Metrics = Metrics.Requests };
        Metrics.Attach(_options, () => topics);
        var interval = long.TryParse(_options.Properties.GetValueOrDefault("log.retention.check.interval.ms"), out var ms) && ms > 0 ? ms : 300_000;
        _retention = RunPeriodicallyAsync(new RetentionPolicy(_state).Run, TimeSpan.FromMilliseconds(interval), _stopping.Token);
        var checkpointInterval = long.TryParse(_options.Properties.GetValueOrDefault("log.flush.offset.checkpoint.interval.ms"), out var c) && c > 0 ? c : 60_000;
        _checkpoints = RunPeriodicallyAsync(_state.Topics.WriteRecoveryPoints, TimeSpan.FromMilliseconds(checkpointInterval), _stopping.Token);
        if (!string.Equals(_options.Properties.GetValueOrDefault("log.cleaner.enable"), "false", StringComparison.OrdinalIgnoreCase))
        {
            var backoff = long.TryParse(_options.Properties.GetValueOrDefault("log.cleaner.backoff.ms"), out var b) && b > 0 ? b : 15_000;
            _cleaner = RunPeriodicallyAsync(new CompactionPolicy(_state).Run, TimeSpan.FromMilliseconds(backoff), _stopping.Token);
        }

        _log.LogInformation("broker {NodeId} of cluster {ClusterId} ready, log.dirs {LogDirs}", _options.NodeId, clusterId, string.Join(",", _options.LogDirs));
    }

    /// <summary>
    /// The transaction coordinator over __transaction_state (placed, like groups, by the partition
    /// count the topic has), its markers written into this broker's partitions. Transactions found
    /// prepared in the replay get their markers now, as their partitions open.
    /// </summary>
    private void StartTransactions(TopicRegistry topics)
    {
        var existing = topics.Find(InternalTopics.TransactionState);
        var partitions = existing is { Partitions.Length: > 0 } ? existing.Partitions.Length : InternalTopics.Settings(InternalTopics.TransactionState, _options).Partitions;
        var markers = new TransactionMarkerWriter(_state!, CompleteOffsetsTransactionAsync);
        _transactions = new TransactionCoordinator(
            new TransactionCoordinatorOptions
            {
                StateTopicPartitions = partitions,
                MaxTimeoutMs = (int)Setting("transaction.max.timeout.ms", 900_000),
                TransactionalIdExpirationMs = Setting("transactional.id.expiration.ms", 604_800_000),
                AbortTimedOutTransactionsIntervalMs = Setting("transaction.abort.timed.out.transaction.cleanup.interval.ms", 10_000),
                RemoveExpiredTransactionalIdsIntervalMs = Setting("transaction.remove.expired.transaction.cleanup.interval.ms", 3_600_000),
            },
            TransactionStatePartition,
            markers,
            _state!.ProducerIds.GenerateProducerId,
            _time,
            _log,
            p => topics.Find(InternalTopics.TransactionState)?.Partition(p)?.LeaderEpoch ?? 0);
        _state.Transactions = _transactions;
        _state.TransactionMarkers = markers;

        // KIP-890 for TxnOffsetCommit: the group's partition must be in the producer's open transaction.
        var transactions = _transactions;
        GroupCoordinator.TransactionVerifier = (transactionalId, producerId, producerEpoch, offsetsPartition) =>
            Task.FromResult(transactions.VerifyPartition(transactionalId, producerId, producerEpoch, InternalTopics.ConsumerOffsets, offsetsPartition));
        _transactions.Start(existing is null ? [] : existing.Partitions.Where(p => topics.LogOf(p) is not null).Select(p => p.Index));
    }

    /// <summary>
    /// The end of a transaction on a __consumer_offsets partition: the group coordinator writes the
    /// marker there and makes the producer's pending transactional offsets visible (or drops them).
    /// </summary>
    /// The group coordinator's "not here / not loaded yet" is the marker writer's retriable NOT_LEADER_OR_FOLLOWER.
    private async Task<ErrorCode> CompleteOffsetsTransactionAsync(int partition, long producerId, short producerEpoch, int coordinatorEpoch, bool commit) =>
        await GroupCoordinator.CompleteTransactionAsync(partition, producerId, producerEpoch, coordinatorEpoch, commit).ConfigureAwait(false) switch
        {
            ErrorCode.CoordinatorNotAvailable or ErrorCode.CoordinatorLoadInProgress or ErrorCode.NotCoordinator => ErrorCode.NotLeaderOrFollower,
            var error => error,
        };

    private long Setting(string key, long fallback) =>
        long.TryParse(_options.Properties.GetValueOrDefault(key), System.Globalization.NumberStyles.Integer, System.Globalization.CultureInfo.InvariantCulture, out var v) && v > 0 ? v : fallback;

    private IPartitionLog TransactionStatePartition(int partition) =>
        _state!.Topics.FindOrCreateInternal(InternalTopics.TransactionState)?.Partition(partition) is { } p && _state.Topics.LogOf(p) is { } log ? log
            : throw new IOException($"{InternalTopics.TransactionState}-{partition} is not available");

    /// <inheritdoc/>
    public int? OrderingKey(ReadOnlyMemory<byte> frame) => ProduceOrdering.Key(frame);

    /// <inheritdoc/>
    public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession connection, CancellationToken cancellationToken) =>
        _pipeline is { } pipeline
            ? pipeline.Dispatch(frame, connection, cancellationToken)
            : ValueTask.FromResult(DispatchResult.CloseConnection("broker not started"));

    /// <summary>The group coordinator (tests end transactions on __consumer_offsets through it).</summary>
    internal GroupCoordinator GroupCoordinator => _groups ?? throw new InvalidOperationException("not started");

    /// <summary>The request pipeline (tests bind handlers of their own into it).</summary>
    internal RequestPipeline Pipeline => _pipeline ?? throw new InvalidOperationException("not started");

    private async Task RunPeriodicallyAsync(Action run, TimeSpan interval, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(interval, _time);
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                run();
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>__consumer_offsets, created (compacted, offsets.topic.*) on first use, as Kafka does.</summary>
    private TopicInfo? OffsetsTopicInfo() => _state!.Topics.FindOrCreateInternal(InternalTopics.ConsumerOffsets);

    private IPartitionLog OffsetsPartition(int partition) =>
        OffsetsTopicInfo()?.Partition(partition) is { } p && _state!.Topics.LogOf(p) is { } log ? log
            : throw new IOException($"{OffsetsTopic.Name}-{partition} is not available");

    /// <summary>Closes every file (appends are synchronous, so none is in flight once connections are closed).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_retention is not null)
        {
            await _retention.ConfigureAwait(false);
        }

        if (_cleaner is not null)
        {
            await _cleaner.ConfigureAwait(false);
        }

        if (_checkpoints is not null)
        {
            await _checkpoints.ConfigureAwait(false);
        }

        if (_transactions is not null)
        {
            await _transactions.DisposeAsync().ConfigureAwait(false);
        }

        if (_groups is not null)
        {
            await _groups.DisposeAsync().ConfigureAwait(false);
        }

        _pipeline = null;
        if (_cluster is not null)
        {
            // What producers are waiting for is committed before the partitions close.
            await _cluster.DisposeAsync().ConfigureAwait(false);
        }

        _state?.Topics.Dispose();
        _state = null;
        _storage.Dispose();
        Metrics.Dispose();
        ReleaseLogDirs();
    }

    private void ReleaseLogDirs()
    {
        foreach (var dirLock in _dirLocks)
        {
            dirLock.Dispose();
        }

        _dirLocks.Clear();
    }
}
