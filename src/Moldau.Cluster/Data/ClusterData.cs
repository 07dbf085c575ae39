using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.ObjectStore;
using Moldau.Storage;

namespace Moldau.Cluster.Data;

/// <summary>
/// The data side of one broker in cluster mode: the commit pipeline every partition appends
/// through, the open partitions (so a commit's NOTIFY reaches them), the LISTEN connection, and a
/// poll of every partition's high watermark as the fallback for missed notifications.
/// </summary>
public sealed class ClusterData : IAsyncDisposable
{
    private readonly ConcurrentDictionary<TopicIdPartition, ClusterPartitionLog> _logs = new();
    private readonly CommitListener _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _poll;

    /// <summary>Starts the pipeline, the listener and the poll.</summary>
    public ClusterData(ClusterCatalog catalog, IObjectStore store, Func<BrokerLease> lease, string cluster, ClusterDataOptions options, TimeProvider time, ILogger log)
    {
        Catalog = catalog;
        Store = store;
        Log = log;
        CacheBytesPerPartition = options.CacheBytesPerPartition;
        ReadAheadBytes = options.ReadAheadBytes;
        Pipeline = new CommitPipeline(catalog, store, lease, cluster, options.CommitInterval, options.CommitGiveUpAfter, time, log);
        _listener = new CommitListener(catalog.DataSource, OnCommit, () => _ = PollOnceAsync(CancellationToken.None), time, log);
        _poll = PollAsync(options.PollInterval, _stop.Token);
    }

    internal ClusterCatalog Catalog { get; }

    internal IObjectStore Store { get; }

    internal ILogger Log { get; }

    internal long CacheBytesPerPartition { get; }

    internal long ReadAheadBytes { get; }

    internal int BatchesPerLookup => 500;

    /// <summary>The produce path.</summary>
    public CommitPipeline Pipeline { get; }

    /// <summary>Completes once LISTEN is in place.</summary>
    public Task Listening => _listener.Listening;

    /// <summary>Opens (or returns the open) partition <paramref name="id"/>, its offsets read from PostgreSQL.</summary>
    /// <exception cref="IOException">PostgreSQL could not be asked, or does not know the partition.</exception>
    public ClusterPartitionLog Open(TopicIdPartition id, string name, PartitionLogOptions options)
    {
        if (_logs.TryGetValue(id, out var open))
        {
            return open;
        }

        PartitionState? state;
        try
        {
            state = Catalog.GetPartitionAsync(id).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException)
        {
            throw new IOException($"cluster catalog: {e.Message}", e);
        }

        if (state is null)
        {
            throw new IOException($"{name} is not in the cluster catalog");
        }

        return _logs.GetOrAdd(id, _ => new ClusterPartitionLog(this, id, name, options, state.Value));
    }

    internal void Forget(ClusterPartitionLog log) => _logs.TryRemove(new KeyValuePair<TopicIdPartition, ClusterPartitionLog>(log.Id, log));

    private void OnCommit(IReadOnlyList<HighWatermarkAdvanced> advanced)
    {
        foreach (var a in advanced)
        {
            if (_logs.TryGetValue(a.Partition, out var log))
            {
                log.Advance(a.HighWatermark);
            }
        }
    }

    private async Task PollAsync(TimeSpan interval, CancellationToken token)
    {
        using var timer = new PeriodicTimer(interval);
        try
        {
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(false))
            {
                await PollOnceAsync(token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task PollOnceAsync(CancellationToken token)
    {
        if (_logs.IsEmpty)
        {
            return;
        }

        try
        {
            foreach (var (id, state) in await Catalog.ListPartitionStatesAsync(token).ConfigureAwait(false))
            {
                if (_logs.TryGetValue(id, out var log))
                {
                    log.Advance(state.HighWatermark, state.LogStartOffset);
                }
            }
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or TimeoutException or IOException)
        {
            Log.LogWarning("cluster: polling high watermarks failed: {Error}", e.Message);
        }
    }

    /// <summary>Commits what is buffered, then stops listening and polling.</summary>
    public async ValueTask DisposeAsync()
    {
        await Pipeline.DisposeAsync().ConfigureAwait(false);
        await _stop.CancelAsync().ConfigureAwait(false);
        await _poll.ConfigureAwait(false);
        await _listener.DisposeAsync().ConfigureAwait(false);
        _stop.Dispose();
    }
}

/// <summary>The data side's settings (server.properties keys in docs/cluster.md).</summary>
public sealed record ClusterDataOptions
{
    /// <summary>moldau.cluster.commit.interval.ms: how long the shared buffer collects before it is uploaded.</summary>
    public TimeSpan CommitInterval { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>moldau.cluster.commit.timeout.ms: how long one object is retried before its producers get KAFKA_STORAGE_ERROR.</summary>
    public TimeSpan CommitGiveUpAfter { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>moldau.cluster.cache.partition.bytes: batches kept in memory per partition.</summary>
    public long CacheBytesPerPartition { get; init; } = 64L << 20;

    /// <summary>moldau.cluster.fetch.read.ahead.bytes: how much one load reads from the object store.</summary>
    public long ReadAheadBytes { get; init; } = 4L << 20;

    /// <summary>moldau.cluster.fetch.poll.ms: the high-watermark poll behind LISTEN/NOTIFY.</summary>
    public TimeSpan PollInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Reads the keys; missing ones keep their defaults.</summary>
    /// <exception cref="ArgumentException">A value is not a positive number.</exception>
    public static ClusterDataOptions FromProperties(IReadOnlyDictionary<string, string> properties) => new()
    {
        CommitInterval = TimeSpan.FromMilliseconds(Positive(properties, "moldau.cluster.commit.interval.ms", 250)),
        CommitGiveUpAfter = TimeSpan.FromMilliseconds(Positive(properties, "moldau.cluster.commit.timeout.ms", 30_000)),
        CacheBytesPerPartition = Positive(properties, "moldau.cluster.cache.partition.bytes", 64L << 20),
        ReadAheadBytes = Positive(properties, "moldau.cluster.fetch.read.ahead.bytes", 4L << 20),
        PollInterval = TimeSpan.FromMilliseconds(Positive(properties, "moldau.cluster.fetch.poll.ms", 1000)),
    };

    private static long Positive(IReadOnlyDictionary<string, string> properties, string key, long defaultValue)
    {
        if (!properties.TryGetValue(key, out var text))
        {
            return defaultValue;
        }

        return long.TryParse(text.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value) && value > 0
            ? value
            : throw new ArgumentException($"{key}: '{text}' is not a positive number");
    }
}
