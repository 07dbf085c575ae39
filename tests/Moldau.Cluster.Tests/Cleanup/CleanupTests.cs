using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.Cleanup;
using Moldau.Cluster.ObjectStore;
using Moldau.Cluster.Tests.Catalog;
using Moldau.Cluster.Tests.Infrastructure;
using Moldau.Protocol;

namespace Moldau.Cluster.Tests.Cleanup;

/// <summary>
/// The retention and clean-up job against a real PostgreSQL (a server of this class's own) and the
/// run's Ceph RGW: retention by time and size, unreferenced objects, the orphan sweep, and two
/// brokers' jobs sharing the work.
/// </summary>
[Collection(CephRgwCollection.Name)]
public sealed class CleanupTests(CephRgwServer rgw, PostgresServer postgres) : IClassFixture<PostgresServer>, IAsyncLifetime
{
    private const string Cluster = "c1";
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(1);

    private CatalogFixture _f = null!;
    private S3ObjectStore _store = null!;

    private static ClusterCleanupOptions Fast => new()
    {
        Interval = TimeSpan.FromMilliseconds(1),
        DeleteGrace = Grace,
        OrphanGrace = TimeSpan.FromHours(1),
        OrphanSweepInterval = TimeSpan.FromMilliseconds(1),
        DefaultRetentionMs = -1,
    };

    public async Task InitializeAsync()
    {
        _f = await CatalogFixture.CreateAsync(postgres);
        _store = new S3ObjectStore(rgw.Options(await rgw.CreateBucketAsync()));
    }

    public async Task DisposeAsync()
    {
        _store.Dispose();
        await _f.DisposeAsync();
    }

    private static long Now => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

    private ClusterCleanupJob Job(ClusterCleanupOptions options, IObjectStore? store = null, int broker = 1) =>
        new(_f.Catalog, store ?? _store, Cluster, broker, options);

    private async Task<string> UploadAsync(DateTimeOffset? keyTime = null, int size = 400)
    {
        var key = ObjectKeys.NewProduceKey(Cluster, keyTime ?? DateTimeOffset.UtcNow);
        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync(key, new byte[size]));
        return key;
    }

    /// <summary>Uploads an object and commits one 100-byte batch per (partition, records, max timestamp).</summary>
    private async Task<(string Key, CommitResult Result)> ProduceAsync(params (TopicIdPartition Partition, int Records, long MaxTimestamp)[] batches)
    {
        var key = await UploadAsync(size: 100 * batches.Length);
        var result = await _f.Catalog.CommitObjectAsync(_f.Lease, new ObjectCommit(
            key, 100 * batches.Length,
            batches.Select((b, i) => new BatchToCommit(b.Partition.TopicId, b.Partition.Partition, 100L * i, 100, b.Records, b.MaxTimestamp)).ToArray()));
        return (key, result);
    }

    private async Task<(bool Unreferenced, bool Deleted)?> ObjectRowAsync(string key)
    {
        await using var cmd = _f.Catalog.DataSource.CreateCommand(
            "SELECT unreferenced_at IS NOT NULL, deleted_at IS NOT NULL FROM moldau_objects WHERE object_key = @k");
        cmd.Parameters.AddWithValue("k", key);
        await using var reader = await cmd.ExecuteReaderAsync();
        return await reader.ReadAsync() ? (reader.GetBoolean(0), reader.GetBoolean(1)) : null;
    }

    private async Task<bool> ExistsAsync(string key)
    {
        try
        {
            await _store.GetAsync(key);
            return true;
        }
        catch (ObjectStoreException e) when (e.Kind == ObjectStoreErrorKind.NotFound)
        {
            return false;
        }
    }

    private async Task<Uuid> TopicAsync(string name, int partitions, Dictionary<string, string?>? configs = null)
    {
        var t = await _f.Catalog.CreateTopicAsync(name, partitions);
        if (configs is not null)
        {
            await _f.Catalog.SetTopicConfigsAsync(t, configs);
        }

        return t;
    }

    [Fact]
    public async Task Retention_ms_drops_the_prefix_of_expired_batches_and_honours_defaults_and_cleanup_policy()
    {
        var timed = new TopicIdPartition(await TopicAsync("timed", 1, new() { ["retention.ms"] = "3600000" }), 0);
        var kept = new TopicIdPartition(await TopicAsync("kept", 1), 0); // broker default here: -1, no limit
        var compacted = new TopicIdPartition(await TopicAsync("compacted", 1, new() { ["retention.ms"] = "1", ["cleanup.policy"] = "compact" }), 0);
        var hour = 3_600_000L;

        // The fourth batch is old again, but after a young one: retention only drops a prefix.
        await ProduceAsync(
            (timed, 3, Now - 3 * hour), (timed, 2, Now - 2 * hour), (timed, 4, Now - 60_000), (timed, 1, Now - 5 * hour),
            (kept, 5, Now - 9 * hour), (compacted, 5, Now - 9 * hour));

        var (partitions, dropped) = await Job(Fast).RunRetentionAsync();
        Assert.Equal(3, partitions.Count);
        Assert.Equal(2, dropped);

        var found = (await _f.Catalog.FindBatchesAsync(timed, 0))!;
        Assert.Equal(new PartitionState(10, 5, 0), found.State);
        Assert.Equal([5L, 9L], found.Batches.Select(b => b.BaseOffset));
        Assert.Equal(new PartitionState(5, 0, 0), await _f.Catalog.GetPartitionAsync(kept));
        Assert.Equal(new PartitionState(5, 0, 0), await _f.Catalog.GetPartitionAsync(compacted));

        // A broker default applies to a topic without its own setting.
        await Job(Fast with { DefaultRetentionMs = hour }).RunRetentionAsync();
        Assert.Equal(new PartitionState(5, 5, 0), await _f.Catalog.GetPartitionAsync(kept));
    }

    [Fact]
    public async Task Retention_bytes_keeps_at_least_the_limit_and_retention_never_passes_the_high_watermark()
    {
        var sized = new TopicIdPartition(await TopicAsync("sized", 1, new() { ["retention.bytes"] = "250" }), 0);
        var zero = new TopicIdPartition(await TopicAsync("zero", 1, new() { ["retention.ms"] = "0" }), 0);
        await ProduceAsync((sized, 1, Now), (sized, 1, Now), (sized, 1, Now), (sized, 1, Now), (zero, 4, Now - 10), (zero, 6, Now - 10));

        await Job(Fast).RunRetentionAsync();

        // Four 100-byte batches, limit 250: dropping the first leaves 300 >= 250; dropping the second
        // would leave 200 < 250, so it stays (Kafka's rule for segments).
        Assert.Equal(new PartitionState(4, 1, 0), await _f.Catalog.GetPartitionAsync(sized));

        // Everything expired: the log start reaches the high watermark, not beyond; appends go on from there.
        Assert.Equal(new PartitionState(10, 10, 0), await _f.Catalog.GetPartitionAsync(zero));
        Assert.Empty((await _f.Catalog.FindBatchesAsync(zero, 0))!.Batches);
        var (_, next) = await ProduceAsync((zero, 2, Now + 60_000));
        Assert.Equal(10, next.Results[0].BaseOffset);
    }

    [Fact]
    public async Task An_object_is_deleted_a_grace_after_its_last_batch_row_went_and_its_row_stays_a_tombstone_a_while()
    {
        var t = await TopicAsync("objects", 2);
        TopicIdPartition p0 = new(t, 0), p1 = new(t, 1);
        var (shared, _) = await ProduceAsync((p0, 2, Now), (p1, 3, Now));
        var (only0, only0Result) = await ProduceAsync((p0, 1, Now));

        await _f.Catalog.DeleteRecordsAsync(p0, -1); // only0 has no batch left; shared still has p1's
        // Committed less than a grace ago (an hour here): not even marked, since a retry may still come.
        Assert.Empty(await Job(Fast with { DeleteGrace = TimeSpan.FromHours(1) }).RunObjectDeletionAsync());
        Assert.Equal((false, false), await ObjectRowAsync(only0));
        var job = Job(Fast with { TombstoneRetention = Grace });

        await Task.Delay(Grace + TimeSpan.FromMilliseconds(200));
        Assert.Empty(await job.RunObjectDeletionAsync()); // marked now, deleted a grace later
        Assert.Equal((true, false), await ObjectRowAsync(only0));
        Assert.Equal((false, false), await ObjectRowAsync(shared));
        Assert.True(await ExistsAsync(only0)); // a fetch that found its batches before may still read it

        await Task.Delay(Grace + TimeSpan.FromMilliseconds(200));
        Assert.Equal([only0], await job.RunObjectDeletionAsync());
        Assert.False(await ExistsAsync(only0));
        Assert.True(await ExistsAsync(shared));
        Assert.Equal((true, true), await ObjectRowAsync(only0));

        // A (very late) retry of the deleted object's commit finds its tombstone: the first outcome, nothing appended.
        var retry = await _f.Catalog.CommitObjectAsync(_f.Lease, new ObjectCommit(only0, 100, [new BatchToCommit(t, 0, 0, 100, 1, Now)]));
        Assert.True(retry.AlreadyCommitted);
        Assert.Equal(only0Result.Results.Select(x => (x.Status, x.BaseOffset, x.LastOffset)), retry.Results.Select(x => (x.Status, x.BaseOffset, x.LastOffset)));
        Assert.Equal(3, (await _f.Catalog.GetPartitionAsync(p0))!.Value.HighWatermark);

        // The tombstone goes after its retention; the shared object goes once p1's batches are gone too.
        await _f.Catalog.DeleteRecordsAsync(p1, -1);
        await Task.Delay(Grace + TimeSpan.FromMilliseconds(200));
        await job.RunObjectDeletionAsync();
        Assert.Null(await ObjectRowAsync(only0));
        await Task.Delay(Grace + TimeSpan.FromMilliseconds(200));
        Assert.Equal([shared], await job.RunObjectDeletionAsync());
        Assert.False(await ExistsAsync(shared));
    }

    [Fact]
    public async Task Objects_uploaded_but_never_committed_are_swept_after_the_grace_and_a_late_commit_of_one_fails()
    {
        var t = await TopicAsync("orphans", 1);
        var young = await UploadAsync(); // "the broker died between upload and commit"
        var skewed = await UploadAsync(DateTimeOffset.UtcNow.AddHours(-2)); // its key claims an old time; the store says new
        var (committed, _) = await ProduceAsync((new TopicIdPartition(t, 0), 3, Now));
        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync("c1/notes.txt", "not a produce key"u8.ToArray()));
        var otherCluster = ObjectKeys.NewProduceKey("c2", DateTimeOffset.UtcNow.AddHours(-2));
        Assert.Equal(PutResult.Created, await _store.PutIfAbsentAsync(otherCluster, new byte[10]));

        // With the default-sized grace nothing is old enough; the skewed key is protected by the store's time.
        Assert.Empty(await Job(Fast).RunOrphanSweepAsync());
        var job = Job(Fast with { OrphanGrace = TimeSpan.FromSeconds(2) });

        await Task.Delay(TimeSpan.FromSeconds(2.5));
        Assert.Equal(new[] { young, skewed }.Order(StringComparer.Ordinal), await job.RunOrphanSweepAsync());
        Assert.False(await ExistsAsync(young));
        Assert.False(await ExistsAsync(skewed));
        Assert.True(await ExistsAsync(committed));
        Assert.True(await ExistsAsync("c1/notes.txt"));
        Assert.True(await ExistsAsync(otherCluster));
        Assert.Equal((true, true), await ObjectRowAsync(young)); // the tombstone that claimed the key

        // The paused broker wakes up and commits the swept object: refused, nothing appended.
        await Assert.ThrowsAsync<InvalidOperationException>(() => _f.Catalog.CommitObjectAsync(
            _f.Lease, new ObjectCommit(young, 400, [new BatchToCommit(t, 0, 0, 100, 2, Now)])));
        Assert.Equal(3, (await _f.Catalog.GetPartitionAsync(new(t, 0)))!.Value.HighWatermark);
        Assert.Empty(await job.RunOrphanSweepAsync());
    }

    [Fact]
    public async Task Work_claimed_by_a_broker_is_skipped_until_its_transaction_ends_and_a_dead_brokers_claim_ends_with_its_connection()
    {
        var t = await TopicAsync("claimed", 2, new() { ["retention.ms"] = "1000" });
        var (key, _) = await ProduceAsync((new(t, 0), 1, Now - 60_000), (new(t, 1), 1, Now - 60_000));
        await Task.Delay(Grace + TimeSpan.FromMilliseconds(200));

        // "Broker 9" claims partition 1's retention item and the objects item, then stops answering.
        var dead = new Npgsql.NpgsqlConnection(_f.Database.ConnectionString);
        await dead.OpenAsync();
        int deadPid;
        await using (var claim = new Npgsql.NpgsqlCommand(
            """
            BEGIN;
            SELECT 1 FROM moldau_partition_jobs WHERE topic_id = @t AND partition = 1 FOR UPDATE;
            SELECT 1 FROM moldau_cleanup_jobs WHERE job = 'objects' FOR UPDATE;
            SELECT pg_backend_pid();
            """, dead))
        {
            claim.Parameters.AddWithValue("t", ClusterCatalog.ToGuid(t));
            await using var reader = await claim.ExecuteReaderAsync();
            await reader.NextResultAsync();
            await reader.NextResultAsync();
            await reader.ReadAsync();
            deadPid = reader.GetInt32(0);
        }

        var job = Job(Fast);
        var (partitions, _) = await job.RunRetentionAsync();
        Assert.Equal([new TopicIdPartition(t, 0)], partitions); // partition 1 is skipped, not waited for
        Assert.Equal(new PartitionState(1, 0, 0), await _f.Catalog.GetPartitionAsync(new(t, 1)));
        Assert.Empty(await job.RunObjectDeletionAsync());
        Assert.Equal((false, false), await ObjectRowAsync(key));

        // Its connection dies (as when the broker is killed): PostgreSQL ends the transaction and the claims with it.
        await using (var kill = _f.Catalog.DataSource.CreateCommand("SELECT pg_terminate_backend(@pid)"))
        {
            kill.Parameters.AddWithValue("pid", deadPid);
            Assert.Equal(true, await kill.ExecuteScalarAsync());
        }

        try
        {
            await dead.DisposeAsync();
        }
        catch (Npgsql.PostgresException e) when (e.SqlState == Npgsql.PostgresErrorCodes.AdminShutdown)
        {
            // Closing reports the termination; the server side is gone either way.
        }

        (partitions, _) = await job.RunRetentionAsync();
        Assert.Contains(new TopicIdPartition(t, 1), partitions);
        Assert.Equal(new PartitionState(1, 1, 0), await _f.Catalog.GetPartitionAsync(new(t, 1)));
        Assert.Empty(await job.RunObjectDeletionAsync()); // marks it now
        await Task.Delay(Grace + TimeSpan.FromMilliseconds(200));
        Assert.Equal([key], await job.RunObjectDeletionAsync());
    }

    [Fact]
    public async Task Two_jobs_checking_retention_at_once_never_check_the_same_partition()
    {
        var a = await TopicAsync("many-a", 60, new() { ["retention.ms"] = "1000" });
        var b = await TopicAsync("many-b", 40);
        var options = Fast with { Interval = TimeSpan.FromHours(1), PartitionsPerClaim = 4 };
        var results = await Task.WhenAll(Enumerable.Range(1, 2).Select(broker => Task.Run(() => Job(options, broker: broker).RunRetentionAsync())));

        var all = results.SelectMany(r => r.Partitions).ToList();
        Assert.Equal(100, all.Count);
        Assert.Equal(100, all.Distinct().Count());
        Assert.Empty(results[0].Partitions.Intersect(results[1].Partitions));
        Assert.Empty((await Job(options).RunRetentionAsync()).Partitions); // all checked: due again in an hour
        Assert.Contains(new TopicIdPartition(a, 59), all);
        Assert.Contains(new TopicIdPartition(b, 0), all);
    }

    [Fact]
    public async Task Two_runners_share_the_work_and_delete_every_object_exactly_once()
    {
        var t = await TopicAsync("shared", 8, new() { ["retention.ms"] = "60000" });
        var old = Now - 3_600_000;
        var committed = new List<string>();
        for (var i = 0; i < 24; i++)
        {
            var (key, _) = await ProduceAsync((new(t, i % 8), 2, old), (new(t, (i + 3) % 8), 1, old));
            committed.Add(key);
        }

        var orphans = new List<string>();
        for (var i = 0; i < 6; i++)
        {
            orphans.Add(await UploadAsync());
        }

        var deletes = new ConcurrentDictionary<string, int>();
        var options = Fast with { Interval = TimeSpan.FromMilliseconds(10), OrphanGrace = TimeSpan.FromSeconds(2) };
        var runners = Enumerable.Range(1, 2)
            .Select(broker => new ClusterCleanupRunner(Job(options, new CountingObjectStore(_store, deletes), broker)))
            .ToArray();
        foreach (var runner in runners)
        {
            runner.Start();
        }

        var expected = committed.Concat(orphans).ToHashSet();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!expected.All(deletes.ContainsKey) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100);
        }

        await Task.Delay(500); // let more rounds run: none may delete anything again
        foreach (var runner in runners)
        {
            await runner.DisposeAsync();
        }

        Assert.All(runners, r => Assert.Equal(0, r.Failures));
        Assert.All(runners, r => Assert.True(r.Runs > 2));
        Assert.Equal(expected.Order(), deletes.Keys.Order());
        Assert.All(deletes, d => Assert.True(d.Value == 1, $"{d.Key} was deleted {d.Value} times"));
        foreach (var key in expected)
        {
            Assert.False(await ExistsAsync(key));
        }

        for (var p = 0; p < 8; p++)
        {
            var state = (await _f.Catalog.GetPartitionAsync(new(t, p)))!.Value;
            Assert.Equal(state.HighWatermark, state.LogStartOffset);
        }
    }

    /// <summary>The real store, counting how often each key is deleted (shared by both brokers' jobs).</summary>
    private sealed class CountingObjectStore(IObjectStore inner, ConcurrentDictionary<string, int> deletes) : IObjectStore
    {
        public Task<PutResult> PutIfAbsentAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default) =>
            inner.PutIfAbsentAsync(key, data, cancellationToken);

        public Task<int> ReadAsync(string key, long position, Memory<byte> destination, CancellationToken cancellationToken = default) =>
            inner.ReadAsync(key, position, destination, cancellationToken);

        public Task<byte[]> GetAsync(string key, CancellationToken cancellationToken = default) => inner.GetAsync(key, cancellationToken);

        public async Task DeleteAsync(string key, CancellationToken cancellationToken = default)
        {
            // A slow store: one broker's deletes are still under way when the other's run starts,
            // so runs overlap and only the claims keep them apart.
            await Task.Delay(30, cancellationToken);
            await inner.DeleteAsync(key, cancellationToken);
            deletes.AddOrUpdate(key, 1, (_, n) => n + 1);
        }

        public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            await foreach (var info in inner.ListAsync(prefix, cancellationToken))
            {
                yield return info;
            }
        }
    }
}
