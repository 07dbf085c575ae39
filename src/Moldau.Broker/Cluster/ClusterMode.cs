using System.Buffers.Binary;
using System.Text;
using Microsoft.Extensions.Logging;
using Moldau.Broker.Topics;
using Moldau.Cluster;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.Cleanup;
using Moldau.Cluster.Data;
using Moldau.Cluster.ObjectStore;
using Moldau.Protocol;

namespace Moldau.Broker.Cluster;

/// <summary>
/// A broker in cluster mode (issue 14, docs/cluster.md): the catalog in PostgreSQL, the object
/// store, this broker's lease (registered at start, renewed, released at a clean stop), the live
/// brokers and the membership version, and the loop that keeps the topic registry's image equal
/// to the catalog. It answers the registry (<see cref="ITopicCatalog"/>) and the handlers
/// (<see cref="IClusterMembership"/>).
/// </summary>
internal sealed partial class ClusterMode : ITopicCatalog, IClusterMembership, IAsyncDisposable
{
    private readonly ClusterCatalogOptions _options;
    private readonly BrokerRegistration _registration;
    private readonly S3ObjectStore _store;
    private readonly ILogger _log;
    private readonly CancellationTokenSource _stop = new();
    private volatile BrokerLease _lease;
    private volatile View _view;
    private TopicRegistry? _topics;
    private Task? _loop;
    private ClusterCleanupRunner? _cleanup;

    private ClusterMode(ClusterCatalogOptions options, ClusterCatalog catalog, S3ObjectStore store, BrokerRegistration registration, BrokerLease lease, string clusterId, ILogger log)
    {
        _options = options;
        Catalog = catalog;
        _store = store;
        _registration = registration;
        _lease = lease;
        ClusterId = clusterId;
        _log = log;
        _view = new View([new ClusterBroker(registration.BrokerId, registration.Rack, [.. registration.Listeners.Select(l => new AdvertisedEndpoint(l.Name, l.Host, l.Port))])], 0);
    }

    /// <summary>The catalog.</summary>
    public ClusterCatalog Catalog { get; }

    /// <summary>The cluster's id, shared by every broker (stored in PostgreSQL).</summary>
    public string ClusterId { get; }

    /// <summary>Produce, fetch, the open partitions.</summary>
    public ClusterData Data { get; private set; } = null!;

    /// <summary>
    /// Cluster mode's start: connect and migrate the catalog, open the object store, register this
    /// broker's lease (waiting while an earlier incarnation's lease of the same id lives), start the
    /// data side. Null when <c>moldau.cluster.postgres.connection</c> is not set.
    /// </summary>
    public static async Task<ClusterMode?> StartAsync(BrokerOptions options, string proposedClusterId, TimeProvider time, ILogger log)
    {
        var catalogOptions = ClusterCatalogOptions.FromProperties(options.Properties);
        if (catalogOptions is null)
        {
            return null;
        }

        var storeOptions = S3ObjectStoreOptions.FromProperties(options.Properties)
            ?? throw new ArgumentException($"{ClusterCatalogOptions.ConnectionKey} is set but {S3ObjectStoreOptions.BucketKey} is not: cluster mode needs both");
        var dataOptions = ClusterDataOptions.FromProperties(options.Properties);
        var cleanupOptions = ClusterCleanupOptions.FromProperties(options.Properties);
        var catalog = await ClusterCatalog.OpenAsync(catalogOptions.ConnectionString).ConfigureAwait(false);
        var store = new S3ObjectStore(storeOptions);
        var clusterId = await catalog.ClusterIdAsync(proposedClusterId).ConfigureAwait(false);
        var registration = new BrokerRegistration(
            options.NodeId,
            Guid.NewGuid(),
            options.Properties.GetValueOrDefault("broker.rack"),
            [.. options.AdvertisedEndpoints.Select(e => new BrokerEndpoint(e.ListenerName, e.Host, e.Port, "PLAINTEXT"))]);

        // A broker killed and started again finds its former lease alive for up to the lease's length.
        var deadline = time.GetUtcNow() + catalogOptions.LeaseDuration + TimeSpan.FromSeconds(5);
        BrokerLease lease;
        while (true)
        {
            try
            {
                lease = await catalog.RegisterBrokerAsync(registration, catalogOptions.LeaseDuration).ConfigureAwait(false);
                break;
            }
            catch (DuplicateBrokerRegistrationException) when (time.GetUtcNow() < deadline)
            {
                log.LogInformation("cluster: node.id {Id} is still held by an earlier lease; waiting for it to expire", options.NodeId);
                await Task.Delay(TimeSpan.FromSeconds(1), time).ConfigureAwait(false);
            }
        }

        var mode = new ClusterMode(catalogOptions, catalog, store, registration, lease, clusterId, log) { _time = time };
        mode.Data = new ClusterData(catalog, store, () => mode._lease, clusterId, dataOptions, time, log);
        mode._cleanup = new ClusterCleanupRunner(new ClusterCleanupJob(catalog, store, clusterId, options.NodeId, cleanupOptions, time, log), time, log);
        await mode.RefreshMembershipAsync(CancellationToken.None).ConfigureAwait(false);
        await mode.Data.Listening.WaitAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        log.LogInformation("cluster: broker {Id} registered (epoch {Epoch}) in cluster {Cluster}; bucket {Bucket}; commit interval {Interval} ms", options.NodeId, lease.BrokerEpoch, clusterId, storeOptions.Bucket, dataOptions.CommitInterval.TotalMilliseconds);
        return mode;
    }

    /// <summary>
    /// Mirrors the catalog's topics into <paramref name="topics"/> now, then keeps lease, membership
    /// and topics current, and starts this broker's share of the clean-up job (retention,
    /// unreferenced objects, the orphan sweep: docs/cluster.md).
    /// </summary>
    public void Attach(TopicRegistry topics)
    {
        _topics = topics;
        MirrorAsync(CancellationToken.None).GetAwaiter().GetResult();
        var interval = TimeSpan.FromMilliseconds(Math.Min(1000, _options.RenewInterval.TotalMilliseconds));
        _loop = RunAsync(interval, _stop.Token);
        _cleanup?.Start();
    }

    private async Task RunAsync(TimeSpan interval, CancellationToken token)
    {
        using var timer = new PeriodicTimer(interval);
        var lastRenew = DateTimeOffset.MinValue;
        try
        {
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                try
                {
                    if (DateTimeOffset.UtcNow - lastRenew >= _options.RenewInterval)
                    {
                        await RenewAsync(token).ConfigureAwait(false);
                        lastRenew = DateTimeOffset.UtcNow;
                    }

                    await RefreshMembershipAsync(token).ConfigureAwait(false);
                    await MirrorAsync(token).ConfigureAwait(false);
                }
                catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or TimeoutException or InvalidOperationException)
                {
                    _log.LogWarning("cluster: catalog unreachable: {Error}", e.Message);
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task RenewAsync(CancellationToken token)
    {
        try
        {
            _lease = await Catalog.RenewLeaseAsync(_lease, _options.LeaseDuration, token).ConfigureAwait(false);
        }
        catch (BrokerFencedException)
        {
            // The lease lapsed (a pause, PostgreSQL out of reach): a new registration, a new epoch.
            _lease = await Catalog.RegisterBrokerAsync(_registration, _options.LeaseDuration, token).ConfigureAwait(false);
            _log.LogWarning("cluster: lease lapsed; registered again with epoch {Epoch}", _lease.BrokerEpoch);
        }
    }

    private async Task RefreshMembershipAsync(CancellationToken token)
    {
        var live = await Catalog.ListLiveBrokersAsync(token).ConfigureAwait(false);
        var brokers = live
            .Select(b => new ClusterBroker(b.Registration.BrokerId, b.Registration.Rack, [.. b.Registration.Listeners.Select(l => new AdvertisedEndpoint(l.Name, l.Host, l.Port))]))
            .OrderBy(b => b.Id)
            .ToList();
        if (brokers.Count == 0)
        {
            return; // our own lease is being renewed: keep the last view
        }

        var members = string.Join(',', brokers.Select(b => b.Id));
        var version = await Catalog.MembershipVersionAsync(members, token).ConfigureAwait(false);
        var before = _view;
        if (before.Epoch != (int)version || !before.Brokers.Select(b => b.Id).SequenceEqual(brokers.Select(b => b.Id)))
        {
            _log.LogInformation("cluster: live brokers {Members}, membership version {Version}", members, version);
        }

        _view = new View(brokers, (int)version);
    }

    private async Task MirrorAsync(CancellationToken token)
    {
        if (_topics is null)
        {
            return;
        }

        _topics.Mirror(await ListTopicsAsync(token).ConfigureAwait(false));
    }

    // ---- ITopicCatalog ---------------------------------------------------------------------------

    /// <inheritdoc/>
    public Uuid? CreateTopic(string name, int partitions, IReadOnlyDictionary<string, string> configs)
    {
        try
        {
            return Catalog.CreateTopicAsync(name, partitions, configs: configs).GetAwaiter().GetResult();
        }
        catch (TopicExistsException)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public IReadOnlyList<(Uuid Id, string Name, int Partitions, IReadOnlyDictionary<string, string> Configs)> ListTopics() =>
        ListTopicsAsync(CancellationToken.None).GetAwaiter().GetResult();

    private async Task<IReadOnlyList<(Uuid Id, string Name, int Partitions, IReadOnlyDictionary<string, string> Configs)>> ListTopicsAsync(CancellationToken token)
    {
        // Configs first: a topic created between the two reads is mirrored without its configs
        // now and with them a second later, never with another topic's.
        var configs = await Catalog.ListTopicConfigsAsync(token).ConfigureAwait(false);
        var topics = await Catalog.ListTopicsAsync(token).ConfigureAwait(false);
        return [.. topics.Select(t => (t.TopicId, t.Name, t.PartitionCount, configs.GetValueOrDefault(t.TopicId) ?? NoConfigs))];
    }

    private static readonly IReadOnlyDictionary<string, string> NoConfigs = new Dictionary<string, string>();

    /// <inheritdoc/>
    public bool SetTopicConfigs(Uuid topicId, IReadOnlyList<(string Name, string? Value)> changes)
    {
        var byName = new Dictionary<string, string?>(StringComparer.Ordinal);
        foreach (var (name, value) in changes)
        {
            byName[name] = value; // the last change of a key wins, as applying them in order would
        }

        try
        {
            Catalog.SetTopicConfigsAsync(topicId, byName).GetAwaiter().GetResult();
            return true;
        }
        catch (KeyNotFoundException)
        {
            return false;
        }
    }

    /// <inheritdoc/>
    public (ErrorCode Error, long LowWatermark)? DeleteRecords(Storage.IPartitionLog log, long offset)
    {
        if (log is not ClusterPartitionLog partition)
        {
            return null;
        }

        DeleteRecordsResult result;
        try
        {
            result = Catalog.DeleteRecordsAsync(partition.Id, offset).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or TimeoutException)
        {
            _log.LogWarning("cluster: DeleteRecords on {Partition} failed: {Error}", partition.Name, e.Message);
            return (ErrorCode.KafkaStorageError, -1);
        }

        switch (result.Status)
        {
            case DeleteRecordsStatus.Ok:
                partition.Advance(-1, result.LowWatermark); // this broker at once; the others at their next poll
                return (ErrorCode.None, result.LowWatermark);
            case DeleteRecordsStatus.OffsetOutOfRange:
                return (ErrorCode.OffsetOutOfRange, -1);
            default:
                return (ErrorCode.UnknownTopicOrPartition, -1);
        }
    }

    /// <inheritdoc/>
    public bool DeleteTopic(Uuid topicId) => Catalog.DeleteTopicAsync(topicId).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public bool AddPartitions(Uuid topicId, int count) => Catalog.AddPartitionsAsync(topicId, count).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public long AllocateProducerIds(int blockSize) => Catalog.AllocateProducerIdBlockAsync(blockSize).GetAwaiter().GetResult();

    /// <inheritdoc/>
    public (int Leader, int Epoch) LeaderOf(Uuid topicId, int partition)
    {
        var view = _view;
        Span<byte> id = stackalloc byte[16];
        topicId.WriteTo(id);
        var key = Mix(BinaryPrimitives.ReadUInt64BigEndian(id) ^ Mix(BinaryPrimitives.ReadUInt64BigEndian(id[8..]) ^ Mix((ulong)partition)));
        return (Choose(view, key), view.Epoch);
    }

    // ---- IClusterMembership ----------------------------------------------------------------------

    /// <inheritdoc/>
    public IReadOnlyList<ClusterBroker> Brokers => _view.Brokers;

    /// <inheritdoc/>
    public int CoordinatorFor(string key)
    {
        // FNV-1a over the key's UTF-8 bytes, then the same rendezvous choice as partitions.
        var hash = 14695981039346656037UL;
        foreach (var b in Encoding.UTF8.GetBytes(key))
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        return Choose(_view, Mix(hash));
    }

    /// <summary>
    /// Rendezvous (highest random weight) hashing: every live broker scores the key, the highest
    /// wins. When a broker goes, only the keys it won move, each to its runner-up.
    /// </summary>
    private static int Choose(View view, ulong key)
    {
        var best = -1;
        var bestScore = 0UL;
        foreach (var broker in view.Brokers)
        {
            var score = Mix(key ^ Mix((ulong)(uint)broker.Id + 0x9E3779B97F4A7C15UL));
            if (best < 0 || score > bestScore)
            {
                best = broker.Id;
                bestScore = score;
            }
        }

        return best;
    }

    // SplitMix64's finaliser: a bijective mix, so nearby inputs give unrelated outputs.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Stops the loops and the clean-up job (waiting for a run in progress), commits what is buffered, releases the lease.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }

        if (_cleanup is not null)
        {
            await _cleanup.DisposeAsync().ConfigureAwait(false);
        }

        await Data.DisposeAsync().ConfigureAwait(false);
        try
        {
            await Catalog.ReleaseLeaseAsync(_lease).ConfigureAwait(false);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or IOException or TimeoutException)
        {
            _log.LogWarning("cluster: could not release the lease: {Error}", e.Message);
        }

        await Catalog.DisposeAsync().ConfigureAwait(false);
        _store.Dispose();
        _stop.Dispose();
    }

    private sealed record View(IReadOnlyList<ClusterBroker> Brokers, int Epoch);
}
