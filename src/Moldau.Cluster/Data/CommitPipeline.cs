using Microsoft.Extensions.Logging;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.ObjectStore;
using Moldau.Protocol.Records;
using Moldau.Storage;
using Npgsql;

namespace Moldau.Cluster.Data;

/// <summary>
/// The produce path of cluster mode: one buffer shared by every partition of this broker. Every
/// commit interval (or once the buffer holds <see cref="MaxObjectBytes"/>) the buffer becomes one
/// object, uploaded create-only, then committed to PostgreSQL in one transaction that assigns the
/// offsets; each batch's task completes only after COMMIT returned. Objects are uploaded and
/// committed one after the other, so a partition's batches are committed in the order they were
/// added (an idempotent producer's pipelined requests keep their order).
/// </summary>
public sealed class CommitPipeline : IAsyncDisposable
{
    /// <summary>The largest object before the buffer is uploaded ahead of the interval (8 MiB).</summary>
    public const int MaxObjectBytes = 8 << 20;

    private readonly ClusterCatalog _catalog;
    private readonly IObjectStore _store;
    private readonly Func<BrokerLease> _lease;
    private readonly string _cluster;
    private readonly TimeSpan _interval;
    private readonly TimeSpan _giveUpAfter;
    private readonly TimeProvider _time;
    private readonly ILogger _log;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _full = new(0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private readonly TimeSpan _testPauseBeforeCommit;
    private Buffer _current = new();
    private bool _closed;

    /// <summary>Starts the upload loop.</summary>
    /// <param name="catalog">Where objects are committed.</param>
    /// <param name="store">Where objects are uploaded.</param>
    /// <param name="lease">This broker's current lease (renewed elsewhere).</param>
    /// <param name="cluster">The cluster id, the first part of every object key.</param>
    /// <param name="interval">moldau.cluster.commit.interval.ms.</param>
    /// <param name="giveUpAfter">How long an object is retried (same key) before its producers get a retriable error.</param>
    /// <param name="time">The clock.</param>
    /// <param name="log">Where failures are logged.</param>
    public CommitPipeline(ClusterCatalog catalog, IObjectStore store, Func<BrokerLease> lease, string cluster, TimeSpan interval, TimeSpan giveUpAfter, TimeProvider time, ILogger log)
    {
        _catalog = catalog;
        _store = store;
        _lease = lease;
        _cluster = cluster;
        _interval = interval;
        _giveUpAfter = giveUpAfter;
        _time = time;
        _log = log;
        _testPauseBeforeCommit = TestPauseBeforeCommit();
        _loop = Task.Run(RunAsync);
    }

    /// <summary>Objects committed so far (tests and logs).</summary>
    public long ObjectsCommitted { get; private set; }

    /// <summary>
    /// Adds a validated batch for <paramref name="log"/>: its leader epoch is written in place, its
    /// bytes copied into the buffer before this returns. The task completes after the commit.
    /// </summary>
    internal Task<AppendResult> Add(ClusterPartitionLog log, Span<byte> batch, int leaderEpoch)
    {
        var writable = new MutableRecordBatchHeader(batch) { PartitionLeaderEpoch = leaderEpoch };
        var header = writable.ReadOnly;
        var pending = new Pending(log, new TaskCompletionSource<AppendResult>(TaskCreationOptions.RunContinuationsAsynchronously));
        var full = false;
        lock (_lock)
        {
            if (_closed)
            {
                throw new IOException("the broker is shutting down");
            }

            // The object is committed under the lease it was accepted under: batches a fenced
            // incarnation took are refused, never committed later under a re-registered lease.
            _current.Lease ??= _lease();
            var location = _current.Writer.Add(batch);
            var idempotent = header.ProducerId >= 0;
            _current.Batches.Add(pending);
            _current.Commits.Add(new BatchToCommit(
                log.Id.TopicId,
                log.Id.Partition,
                location.Position,
                location.Size,
                header.LastOffsetDelta + 1,
                header.MaxTimestamp,
                idempotent ? header.ProducerId : -1,
                idempotent ? header.ProducerEpoch : (short)-1,
                idempotent ? header.BaseSequence : -1));
            full = _current.Writer.Length >= MaxObjectBytes;
        }

        if (full)
        {
            _full.Release();
        }

        return pending.Done.Task;
    }

    private async Task RunAsync()
    {
        var token = _stop.Token;
        while (true)
        {
            try
            {
                await _full.WaitAsync(_interval, token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // Closing: what is buffered still goes out once (below), then the loop ends.
            }

            Buffer taken;
            lock (_lock)
            {
                taken = _current;
                if (taken.Batches.Count > 0)
                {
                    _current = new Buffer();
                }
            }

            if (taken.Batches.Count > 0)
            {
                await UploadAndCommitAsync(taken).ConfigureAwait(false);
                taken.Writer.Dispose();
            }

            if (token.IsCancellationRequested)
            {
                return;
            }
        }
    }

    private async Task UploadAndCommitAsync(Buffer buffer)
    {
        var key = ObjectKeys.NewProduceKey(_cluster, _time.GetUtcNow());
        var started = _time.GetTimestamp();
        var backoff = TimeSpan.FromMilliseconds(100);
        CommitResult? result = null;
        var uploaded = false;
        Exception? last = null;
        while (_time.GetElapsedTime(started) < _giveUpAfter)
        {
            try
            {
                if (!uploaded)
                {
                    // AlreadyExists: an earlier attempt of this very upload landed (same key, same bytes).
                    await buffer.Writer.UploadAsync(_store, key).ConfigureAwait(false);
                    uploaded = true;
                    if (_testPauseBeforeCommit > TimeSpan.Zero)
                    {
                        _log.LogWarning("cluster: test pause: object {Key} ({Batches} batches) uploaded, committing in {Ms} ms", key, buffer.Batches.Count, _testPauseBeforeCommit.TotalMilliseconds);
                        await Task.Delay(_testPauseBeforeCommit, _time).ConfigureAwait(false);
                    }
                }

                // An unknown outcome (connection lost around COMMIT) is retried with the same key:
                // the catalog then returns what landed, or commits now.
                result = await _catalog.CommitObjectAsync(buffer.Lease!, new ObjectCommit(key, buffer.Writer.Length, buffer.Commits)).ConfigureAwait(false);
                break;
            }
            catch (ObjectStoreException e) when (e.IsRetriable)
            {
                last = e;
            }
            catch (ObjectStoreException e)
            {
                last = e;
                break; // bad credentials, no bucket: retrying will not help this object
            }
            catch (BrokerFencedException e)
            {
                // The lease these batches were accepted under lapsed (a pause, PostgreSQL out of
                // reach): other brokers may have taken this broker's partitions and the producers
                // may have sent these batches there meanwhile. What a fenced incarnation accepted is
                // not committed later under a new lease: its producers get a retriable error and
                // send again (the uploaded object is an orphan for the sweep).
                last = e;
                break;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException)
            {
                last = e;
            }

            _log.LogWarning("cluster: object {Key} ({Bytes} bytes, {Batches} batches) not committed yet, retrying: {Error}", key, buffer.Writer.Length, buffer.Batches.Count, last?.Message);
            await Task.Delay(backoff, _time).ConfigureAwait(false);
            backoff = TimeSpan.FromMilliseconds(Math.Min(1000, backoff.TotalMilliseconds * 2));
        }

        if (result is null)
        {
            _log.LogError("cluster: object {Key} could not be stored and committed; its {Batches} batches are answered KAFKA_STORAGE_ERROR: {Error}", key, buffer.Batches.Count, last?.Message);
            var failure = new IOException($"not stored: {last?.Message}", last);
            foreach (var pending in buffer.Batches)
            {
                pending.Done.TrySetException(failure);
            }

            return;
        }

        ObjectsCommitted++;
        var content = buffer.Writer.Content;
        for (var i = 0; i < buffer.Batches.Count; i++)
        {
            var pending = buffer.Batches[i];
            var outcome = result.Results[i];
            if (outcome.Status == BatchCommitStatus.UnknownTopicOrPartition)
            {
                pending.Done.TrySetException(new ObjectDisposedException($"{pending.Log.Name}: the partition is gone"));
                continue;
            }

            if (outcome.Status == BatchCommitStatus.Appended)
            {
                var location = buffer.Commits[i];
                pending.Log.Committed(content.Span.Slice((int)location.BytePosition, location.ByteSize), outcome.BaseOffset, outcome.LastOffset);
            }

            pending.Done.TrySetResult(outcome.ToAppendResult());
        }
    }

    /// <summary>Uploads and commits what is buffered, then stops; later adds throw.</summary>
    public async ValueTask DisposeAsync()
    {
        lock (_lock)
        {
            _closed = true;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }

    /// <summary>
    /// Test-only: the environment variable <c>MOLDAU_CLUSTER_TEST_PAUSE_BEFORE_COMMIT_MS</c> makes
    /// every upload wait that long before its commit, so a test can kill the broker between upload
    /// and commit deterministically. Not a configuration key; never set it in production.
    /// </summary>
    private static TimeSpan TestPauseBeforeCommit() =>
        int.TryParse(Environment.GetEnvironmentVariable("MOLDAU_CLUSTER_TEST_PAUSE_BEFORE_COMMIT_MS"), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : TimeSpan.Zero;

    private sealed class Buffer
    {
        public BatchObjectWriter Writer { get; } = new(64 << 10);

        public List<Pending> Batches { get; } = [];

        public List<BatchToCommit> Commits { get; } = [];

        /// <summary>The lease current when the first batch was added.</summary>
        public BrokerLease? Lease { get; set; }
    }

    private sealed record Pending(ClusterPartitionLog Log, TaskCompletionSource<AppendResult> Done);
}
