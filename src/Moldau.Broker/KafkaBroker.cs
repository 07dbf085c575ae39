using System.Buffers;
using System.Runtime.CompilerServices;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Handlers;
using Moldau.Broker.Retention;
using Moldau.Broker.Topics;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Storage;

namespace Moldau.Broker;

/// <summary>
/// The broker: owns the topic registry and the handlers, and turns request frames into
/// response frames. One switch on the API key; one handler per API in Handlers/.
/// </summary>
public sealed class KafkaBroker : IRequestDispatcher, IAsyncDisposable
{
    private readonly BrokerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private BrokerState? _state;

    /// <summary>The shared state the handlers see (tests reach the logs through it).</summary>
    internal BrokerState State => _state ?? throw new InvalidOperationException("not started");
    private MetadataHandler? _metadata;
    private DescribeTopicPartitionsHandler? _describeTopicPartitions;
    private ProduceHandler? _produce;
    private FetchHandler? _fetch;
    private ListOffsetsHandler? _listOffsets;
    private CreateTopicsHandler? _createTopics;
    private DeleteTopicsHandler? _deleteTopics;
    private CreatePartitionsHandler? _createPartitions;
    private InitProducerIdHandler? _initProducerId;
    private GroupCoordinator? _groups;
    private readonly CancellationTokenSource _stopping = new();
    private Task? _retention;
    private Task? _cleaner;
    private Task? _checkpoints;
    private FindCoordinatorHandler? _findCoordinator;
    private JoinGroupHandler? _joinGroup;
    private SyncGroupHandler? _syncGroup;
    private HeartbeatHandler? _heartbeat;
    private LeaveGroupHandler? _leaveGroup;
    private OffsetCommitHandler? _offsetCommit;
    private OffsetFetchHandler? _offsetFetch;
    private ListGroupsHandler? _listGroups;
    private DescribeGroupsHandler? _describeGroups;
    private DeleteGroupsHandler? _deleteGroups;
    private OffsetDeleteHandler? _offsetDelete;
    private DescribeClusterHandler? _describeCluster;
    private DescribeConfigsHandler? _describeConfigs;
    private AlterConfigsHandler? _alterConfigs;
    private IncrementalAlterConfigsHandler? _incrementalAlterConfigs;
    private OffsetForLeaderEpochHandler? _offsetForLeaderEpoch;
    private DeleteRecordsHandler? _deleteRecords;
    private DescribeLogDirsHandler? _describeLogDirs;
    private DescribeProducersHandler? _describeProducers;
    private readonly ReusePool<ProduceExchange> _produceExchanges = new();
    private readonly ReusePool<FetchExchange> _fetchExchanges = new();
    private readonly List<LogDirectoryLock> _dirLocks = [];

    // The storage engine's buffers, threads and timers for this broker's logs alone: closed after them.
    private readonly StorageRuntime _storage = new();

    /// <summary>The storage runtime this broker's logs share, disposed with the broker.</summary>
    internal StorageRuntime Storage => _storage;

    /// <summary>Creates a broker over <paramref name="options"/>; call <see cref="Start"/> before serving.</summary>
    public KafkaBroker(BrokerOptions options, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _log = loggers.CreateLogger("Moldau.Broker");
        _time = time;
    }

    /// <summary>Reads meta.properties and the metadata log, and opens every partition log.</summary>
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
        var topics = new TopicRegistry(_options, _log, _time, _storage);
        topics.Load();
        _state = new BrokerState(_options, topics, clusterId, _time, _log);
        _metadata = new MetadataHandler(_state);
        _describeTopicPartitions = new DescribeTopicPartitionsHandler(_state);
        _produce = new ProduceHandler(_state);
        _fetch = new FetchHandler(_state);
        _listOffsets = new ListOffsetsHandler(_state);
        _createTopics = new CreateTopicsHandler(_state);
        _deleteTopics = new DeleteTopicsHandler(_state);
        _createPartitions = new CreatePartitionsHandler(_state);
        _initProducerId = new InitProducerIdHandler(_state);
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
            },
            OffsetsPartition,
            (topic, partition) => topics.Find(topic)?.Partition(partition) is not null,
            _time,
            _log);

        // An offline __consumer_offsets partition (its log could not be opened) is skipped: its groups start empty.
        _groups.Start(existing is null ? [] : existing.Partitions.Where(p => p.Log is not null).Select(p => p.Index));
        _findCoordinator = new FindCoordinatorHandler(_state, () => OffsetsTopicInfo() is not null);
        _joinGroup = new JoinGroupHandler(_groups);
        _syncGroup = new SyncGroupHandler(_groups);
        _heartbeat = new HeartbeatHandler(_groups);
        _leaveGroup = new LeaveGroupHandler(_groups);
        _offsetCommit = new OffsetCommitHandler(_groups);
        _offsetFetch = new OffsetFetchHandler(_groups);
        _listGroups = new ListGroupsHandler(_groups);
        _describeGroups = new DescribeGroupsHandler(_groups, _state.Authorizer);
        _deleteGroups = new DeleteGroupsHandler(_groups);
        _offsetDelete = new OffsetDeleteHandler(_groups);
        _describeCluster = new DescribeClusterHandler(_state);
        _describeConfigs = new DescribeConfigsHandler(_state);
        _alterConfigs = new AlterConfigsHandler(_state);
        _incrementalAlterConfigs = new IncrementalAlterConfigsHandler(_state);
        _offsetForLeaderEpoch = new OffsetForLeaderEpochHandler(_state);
        _deleteRecords = new DeleteRecordsHandler(_state);
        _describeLogDirs = new DescribeLogDirsHandler(_state);
        _describeProducers = new DescribeProducersHandler(_state);
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

    /// <inheritdoc/>
    public int? OrderingKey(ReadOnlyMemory<byte> frame) => ProduceOrdering.Key(frame);

    /// <inheritdoc/>
    public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionInfo connection, CancellationToken cancellationToken)
    {
        if (_state is null)
        {
            return ValueTask.FromResult(DispatchResult.CloseConnection("broker not started"));
        }

        if (!RequestHeader.TryPeek(frame.Span, out var apiKey, out var apiVersion, out var correlationId))
        {
            return Close($"frame of {frame.Length} bytes is shorter than a request header");
        }

        var served = SupportedApis.Find(apiKey);
        if (apiKey == (short)ApiKey.ApiVersions && (served is null || apiVersion > served.MaxVersion))
        {
            return ValueTask.FromResult(ApiVersionsHandler.UnsupportedVersion(correlationId));
        }

        if (served is null || apiVersion < served.MinAdvertised || apiVersion > served.MaxVersion)
        {
            return Close($"unsupported API key {apiKey} version {apiVersion}");
        }

        var spec = ApiSpecs.Find(apiKey)!;
        switch ((ApiKey)apiKey)
        {
            // The hot path: request, response and the rest are reused, nothing is allocated.
            case ApiKey.Produce:
                return Produce(frame, spec, apiVersion, connection, cancellationToken);
            case ApiKey.Fetch:
                return Fetch(frame, spec, apiVersion, connection, cancellationToken);
        }

        var header = new RequestHeader();
        var reader = new KafkaReader(frame);
        try
        {
            header.Read(ref reader, spec.RequestHeaderVersion(apiVersion));
            var context = new RequestContext(header, connection, cancellationToken);
            var responseHeader = spec.ResponseHeaderVersion(apiVersion);
            switch ((ApiKey)apiKey)
            {
                case ApiKey.ApiVersions:
                    Parse<ApiVersionsRequest>(ref reader, apiVersion);
                    return Respond(context, responseHeader, ApiVersionsHandler.Handle());
                case ApiKey.Metadata:
                    return Respond(context, responseHeader, _metadata!.Handle(context, Parse<MetadataRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeTopicPartitions:
                    return Respond(context, responseHeader, _describeTopicPartitions!.Handle(context, Parse<DescribeTopicPartitionsRequest>(ref reader, apiVersion)));
                case ApiKey.ListOffsets:
                    return ListOffsetsAsync(context, responseHeader, Parse<ListOffsetsRequest>(ref reader, apiVersion));
                case ApiKey.CreateTopics:
                    return Respond(context, responseHeader, _createTopics!.Handle(Parse<CreateTopicsRequest>(ref reader, apiVersion)));
                case ApiKey.DeleteTopics:
                    return Respond(context, responseHeader, _deleteTopics!.Handle(context, Parse<DeleteTopicsRequest>(ref reader, apiVersion)));
                case ApiKey.CreatePartitions:
                    return Respond(context, responseHeader, _createPartitions!.Handle(Parse<CreatePartitionsRequest>(ref reader, apiVersion)));
                case ApiKey.InitProducerId:
                    return Respond(context, responseHeader, _initProducerId!.Handle(Parse<InitProducerIdRequest>(ref reader, apiVersion)));
                case ApiKey.FindCoordinator:
                    return Respond(context, responseHeader, _findCoordinator!.Handle(context, Parse<FindCoordinatorRequest>(ref reader, apiVersion)));
                case ApiKey.JoinGroup:
                    return RespondAsync(context, responseHeader, _joinGroup!.HandleAsync(context, Parse<JoinGroupRequest>(ref reader, apiVersion)));
                case ApiKey.SyncGroup:
                    return RespondAsync(context, responseHeader, _syncGroup!.HandleAsync(context, Parse<SyncGroupRequest>(ref reader, apiVersion)));
                case ApiKey.Heartbeat:
                    return RespondAsync(context, responseHeader, _heartbeat!.HandleAsync(Parse<HeartbeatRequest>(ref reader, apiVersion)));
                case ApiKey.LeaveGroup:
                    return RespondAsync(context, responseHeader, _leaveGroup!.HandleAsync(context, Parse<LeaveGroupRequest>(ref reader, apiVersion)));
                case ApiKey.OffsetCommit:
                    return RespondAsync(context, responseHeader, _offsetCommit!.HandleAsync(context, Parse<OffsetCommitRequest>(ref reader, apiVersion)));
                case ApiKey.OffsetFetch:
                    return RespondAsync(context, responseHeader, _offsetFetch!.HandleAsync(context, Parse<OffsetFetchRequest>(ref reader, apiVersion)));
                case ApiKey.ListGroups:
                    return RespondAsync(context, responseHeader, _listGroups!.HandleAsync(Parse<ListGroupsRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeGroups:
                    return RespondAsync(context, responseHeader, _describeGroups!.HandleAsync(context, Parse<DescribeGroupsRequest>(ref reader, apiVersion)));
                case ApiKey.DeleteGroups:
                    return RespondAsync(context, responseHeader, _deleteGroups!.HandleAsync(Parse<DeleteGroupsRequest>(ref reader, apiVersion)));
                case ApiKey.OffsetDelete:
                    return RespondAsync(context, responseHeader, _offsetDelete!.HandleAsync(Parse<OffsetDeleteRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeCluster:
                    return Respond(context, responseHeader, _describeCluster!.Handle(context, Parse<DescribeClusterRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeConfigs:
                    return Respond(context, responseHeader, _describeConfigs!.Handle(Parse<DescribeConfigsRequest>(ref reader, apiVersion)));
                case ApiKey.AlterConfigs:
                    return Respond(context, responseHeader, _alterConfigs!.Handle(Parse<AlterConfigsRequest>(ref reader, apiVersion)));
                case ApiKey.IncrementalAlterConfigs:
                    return Respond(context, responseHeader, _incrementalAlterConfigs!.Handle(Parse<IncrementalAlterConfigsRequest>(ref reader, apiVersion)));
                case ApiKey.OffsetForLeaderEpoch:
                    return Respond(context, responseHeader, _offsetForLeaderEpoch!.Handle(Parse<OffsetForLeaderEpochRequest>(ref reader, apiVersion)));
                case ApiKey.DeleteRecords:
                    return Respond(context, responseHeader, _deleteRecords!.Handle(Parse<DeleteRecordsRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeLogDirs:
                    return Respond(context, responseHeader, _describeLogDirs!.Handle(Parse<DescribeLogDirsRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeProducers:
                    return Respond(context, responseHeader, _describeProducers!.Handle(Parse<DescribeProducersRequest>(ref reader, apiVersion)));
                default:
                    return Close($"API key {apiKey} has no handler");
            }
        }
        catch (KafkaProtocolException e)
        {
            return Close($"unparseable {(ApiKey)apiKey} v{apiVersion} request: {e.Message}");
        }
    }

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

    private static async ValueTask<DispatchResult> RespondAsync<T>(RequestContext context, short headerVersion, Task<T> pending)
        where T : IKafkaMessage
    {
        var body = await pending.ConfigureAwait(false);
        return ResponseWriter.Encode(context.Header.CorrelationId, headerVersion, body, context.Version);
    }

    /// <summary>
    /// Produce: appends synchronously (in request order, see <see cref="IRequestDispatcher"/>);
    /// acks=0 and acks=1 are answered at once, acks=all once the appends are durable.
    /// </summary>
    private ValueTask<DispatchResult> Produce(ReadOnlyMemory<byte> frame, ApiSpec spec, short apiVersion, ConnectionInfo connection, CancellationToken cancellationToken)
    {
        var exchange = _produceExchanges.Rent();
        var handedOver = false;
        try
        {
            var reader = new KafkaReader(frame);
            exchange.Header.Read(ref reader, spec.RequestHeaderVersion(apiVersion));
            var request = exchange.Request;
            request.Read(ref reader, apiVersion);
            var context = new RequestContext(exchange.Header, connection, cancellationToken);
            var responseHeader = spec.ResponseHeaderVersion(apiVersion);
            exchange.Response.Reset();
            _produce!.Handle(context, request, exchange.Response, exchange.Durable, out var anyError);
            if (request.Acks == 0 && context.Version >= 3)
            {
                // acks=0 gets no response; a failure closes the connection so the client
                // refreshes its metadata, as Kafka does.
                return anyError
                    ? Close("acks=0 produce failed; closing so the client refreshes its metadata")
                    : ValueTask.FromResult(DispatchResult.None);
            }

            if (exchange.Durable.Count == 0)
            {
                return Respond(context, responseHeader, exchange.Response);
            }

            handedOver = true;
            return ProduceWhenDurableAsync(context, responseHeader, exchange);
        }
        catch (KafkaProtocolException e)
        {
            return Close($"unparseable {ApiKey.Produce} v{apiVersion} request: {e.Message}");
        }
        finally
        {
            if (!handedOver)
            {
                Release(exchange);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<DispatchResult> ProduceWhenDurableAsync(RequestContext context, short responseHeader, ProduceExchange exchange)
    {
        try
        {
            foreach (var (result, task) in exchange.Durable)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (IOException e)
                {
                    _log.LogError("fsync failed; answering KAFKA_STORAGE_ERROR: {Error}", e.Message);
                    result.ErrorCode = (short)ErrorCode.KafkaStorageError;
                    result.BaseOffset = -1;
                }
            }

            return ResponseWriter.Encode(context.Header.CorrelationId, responseHeader, exchange.Response, context.Version);
        }
        finally
        {
            Release(exchange);
        }
    }

    private void Release(ProduceExchange exchange)
    {
        // The records are slices of the request frame, which goes back to the connection: a
        // pooled request must not keep it reachable.
        foreach (var topic in exchange.Request.TopicData)
        {
            foreach (var partition in topic.PartitionData)
            {
                partition.Records = null;
            }
        }

        exchange.Durable.Clear();
        _produceExchanges.Return(exchange);
    }

    /// <summary>
    /// ListOffsets for the latest offset answers the high watermark: appends not yet durable
    /// (acks=1, still lingering before their fsync) are synced first, so a client sees what it
    /// wrote, as it does with Kafka.
    /// </summary>
    private ValueTask<DispatchResult> ListOffsetsAsync(RequestContext context, short responseHeader, ListOffsetsRequest request)
    {
        List<Task>? pending = null;
        foreach (var topic in request.Topics)
        {
            foreach (var p in topic.Partitions)
            {
                if (p.Timestamp == -1 && _state!.Topics.Find(topic.Name)?.Partition(p.PartitionIndex)?.Log is { } log && log.HighWatermark < log.LogEndOffset)
                {
                    log.RequestDurableSoon();
                    (pending ??= []).Add(log.WaitDurableAsync(log.LogEndOffset));
                }
            }
        }

        return pending is null
            ? Respond(context, responseHeader, _listOffsets!.Handle(request))
            : ListOffsetsWhenDurableAsync(context, responseHeader, request, pending);
    }

    private async ValueTask<DispatchResult> ListOffsetsWhenDurableAsync(RequestContext context, short responseHeader, ListOffsetsRequest request, List<Task> pending)
    {
        try
        {
            await Task.WhenAll(pending).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // A failed fsync: the high watermark stays where it is, and that is the answer.
        }

        return ResponseWriter.Encode(context.Header.CorrelationId, responseHeader, _listOffsets!.Handle(request), context.Version);
    }

    /// <summary>Fetch: answered at once when there is data (or nothing to wait for), else when data comes or max_wait_ms passes.</summary>
    private ValueTask<DispatchResult> Fetch(ReadOnlyMemory<byte> frame, ApiSpec spec, short apiVersion, ConnectionInfo connection, CancellationToken cancellationToken)
    {
        var exchange = _fetchExchanges.Rent();
        var handedOver = false;
        try
        {
            var reader = new KafkaReader(frame);
            exchange.Header.Read(ref reader, spec.RequestHeaderVersion(apiVersion));
            exchange.Request.Read(ref reader, apiVersion);
            var context = new RequestContext(exchange.Header, connection, cancellationToken);
            var responseHeader = spec.ResponseHeaderVersion(apiVersion);
            var pending = _fetch!.HandleAsync(context, exchange.Request, exchange.Response, exchange.Waits, exchange.Rented);
            if (pending.IsCompletedSuccessfully)
            {
                pending.GetAwaiter().GetResult();
                return Respond(context, responseHeader, exchange.Response);
            }

            handedOver = true;
            return FetchWhenReadyAsync(context, responseHeader, pending, exchange);
        }
        catch (KafkaProtocolException e)
        {
            return Close($"unparseable {ApiKey.Fetch} v{apiVersion} request: {e.Message}");
        }
        finally
        {
            if (!handedOver)
            {
                Release(exchange);
            }
        }
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<DispatchResult> FetchWhenReadyAsync(RequestContext context, short responseHeader, ValueTask pending, FetchExchange exchange)
    {
        try
        {
            await pending.ConfigureAwait(false);
            return ResponseWriter.Encode(context.Header.CorrelationId, responseHeader, exchange.Response, context.Version);
        }
        finally
        {
            Release(exchange);
        }
    }

    private void Release(FetchExchange exchange)
    {
        // The records were copied into the response frame: their read buffers go back, and the
        // pooled response keeps no slice of them.
        foreach (var buffer in exchange.Rented)
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }

        exchange.Rented.Clear();
        exchange.Waits.Clear();
        foreach (var topic in exchange.Response.Responses)
        {
            foreach (var partition in topic.Partitions)
            {
                partition.Records = null;
            }
        }

        _fetchExchanges.Return(exchange);
    }

    private static T Parse<T>(ref KafkaReader reader, short version)
        where T : IKafkaMessage, new()
    {
        var message = new T();
        message.Read(ref reader, version);
        return message;
    }

    private static ValueTask<DispatchResult> Respond(RequestContext context, short headerVersion, IKafkaMessage body) =>
        ValueTask.FromResult(ResponseWriter.Encode(context.Header.CorrelationId, headerVersion, body, context.Version));

    private static ValueTask<DispatchResult> Close(string reason) => ValueTask.FromResult(DispatchResult.CloseConnection(reason));

    /// <summary>What a Produce request uses, kept for the next one.</summary>
    private sealed class ProduceExchange
    {
        public RequestHeader Header { get; } = new();

        public ProduceRequest Request { get; } = new();

        public ProduceResponse Response { get; } = new();

        public List<(ProduceResponse.PartitionProduceResponse Result, Task Durable)> Durable { get; } = [];
    }

    /// <summary>What a Fetch request uses, kept for the next one.</summary>
    private sealed class FetchExchange
    {
        public RequestHeader Header { get; } = new();

        public FetchRequest Request { get; } = new();

        public FetchResponse Response { get; } = new();

        public List<Task> Waits { get; } = [];

        public List<byte[]> Rented { get; } = [];
    }

    /// <summary>
    /// A few objects kept for reuse across requests and connections (requests of one connection
    /// are in flight together, and dispatched from more than one thread). A full pool drops what
    /// is returned; an empty one makes a new object.
    /// </summary>
    private sealed class ReusePool<T>
        where T : class, new()
    {
        private readonly T?[] _items = new T?[64];
        private readonly Lock _lock = new();
        private int _count;

        public T Rent()
        {
            lock (_lock)
            {
                if (_count > 0)
                {
                    var item = _items[--_count]!;
                    _items[_count] = null;
                    return item;
                }
            }

            return new T();
        }

        public void Return(T item)
        {
            lock (_lock)
            {
                if (_count < _items.Length)
                {
                    _items[_count++] = item;
                }
            }
        }
    }

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

        if (_groups is not null)
        {
            await _groups.DisposeAsync().ConfigureAwait(false);
        }

        _state?.Topics.Dispose();
        _state = null;
        _storage.Dispose();
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
