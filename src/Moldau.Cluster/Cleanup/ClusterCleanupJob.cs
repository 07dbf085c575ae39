using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Cluster.Catalog;
using Moldau.Cluster.ObjectStore;
using Npgsql;

namespace Moldau.Cluster.Cleanup;

/// <summary>
/// The retention and clean-up job every broker runs, sharing the work through PostgreSQL:
/// <list type="number">
/// <item>retention: per partition, <c>retention.ms</c> and <c>retention.bytes</c> (the topic's, else
/// the broker defaults) drop whole batch rows from the start and advance the log start offset;</item>
/// <item>objects: objects no batch row refers to any more are marked, deleted from the bucket a grace
/// period later, and their rows kept a day as tombstones;</item>
/// <item>orphans: objects under the cluster's prefix that were uploaded but never committed (no
/// catalog row, older than the orphan grace) are claimed with a tombstone row, then deleted.</item>
/// </list>
/// Work items (a row of <c>moldau_partition_jobs</c> per partition, rows of
/// <c>moldau_cleanup_jobs</c> for the global steps) are claimed with <c>FOR UPDATE SKIP LOCKED</c>
/// inside a transaction that lasts as long as the work: two brokers never do the same item at once,
/// and a dead broker's claim ends with its connection. A done item is due again one interval later.
/// </summary>
public sealed class ClusterCleanupJob
{
    private const int ObjectsPerRound = 1000;
    private const int MaxRounds = 1000;
    private const int DeleteParallelism = 8;

    private readonly ClusterCatalog _catalog;
    private readonly IObjectStore _store;
    private readonly string _clusterPrefix;
    private readonly int _brokerId;
    private readonly ClusterCleanupOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;

    /// <summary>A job over the catalog and the bucket of the cluster whose object keys start with <paramref name="clusterName"/>/.</summary>
    public ClusterCleanupJob(
        ClusterCatalog catalog, IObjectStore store, string clusterName, int brokerId, ClusterCleanupOptions options,
        TimeProvider? time = null, ILogger? logger = null)
    {
        _catalog = catalog;
        _store = store;
        _clusterPrefix = ObjectKeys.ClusterPrefix(clusterName);
        _brokerId = brokerId;
        _options = options;
        _time = time ?? TimeProvider.System;
        _logger = logger ?? NullLogger.Instance;
    }

    /// <summary>The options it runs with.</summary>
    public ClusterCleanupOptions Options => _options;

    /// <summary>Runs every step whose work is due and not claimed by another broker.</summary>
    public async Task<CleanupReport> RunOnceAsync(CancellationToken cancellationToken = default)
    {
        var retention = await RunRetentionAsync(cancellationToken);
        var objects = await RunObjectDeletionAsync(cancellationToken);
        var orphans = await RunOrphanSweepAsync(cancellationToken);
        return new CleanupReport(retention.Partitions, retention.BatchesDropped, objects, orphans);
    }

    // ---- retention -----------------------------------------------------------------------------

    /// <summary>
    /// Checks every due partition not claimed by another broker, <see cref="ClusterCleanupOptions.PartitionsPerClaim"/>
    /// per transaction. Returns the partitions this call checked and how many batch rows it dropped.
    /// </summary>
    public async Task<(IReadOnlyList<TopicIdPartition> Partitions, long BatchesDropped)> RunRetentionAsync(CancellationToken cancellationToken = default)
    {
        var checkedPartitions = new List<TopicIdPartition>();
        long dropped = 0;
        for (var round = 0; round < MaxRounds; round++)
        {
            var (claimed, drops) = await RetentionRoundAsync(cancellationToken);
            checkedPartitions.AddRange(claimed);
            dropped += drops;
            if (claimed.Count < _options.PartitionsPerClaim)
            {
                break;
            }
        }

        return (checkedPartitions, dropped);
    }

    private async Task<(List<TopicIdPartition> Claimed, long Dropped)> RetentionRoundAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _catalog.DataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);

        // The claim: due work items no other broker holds. The partitions' own rows are locked next
        // (waiting for a commit in flight), in (topic, partition) order like every commit.
        var claimed = new List<TopicIdPartition>();
        await using (var claim = new NpgsqlCommand(
            """
            SELECT topic_id, partition FROM moldau_partition_jobs
            WHERE due_at <= clock_timestamp()
            ORDER BY due_at
            LIMIT @n
            FOR UPDATE SKIP LOCKED
            """, connection, tx))
        {
            claim.Parameters.AddWithValue("n", _options.PartitionsPerClaim);
            await using var reader = await claim.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                claimed.Add(new TopicIdPartition(ClusterCatalog.FromGuid(reader.GetGuid(0)), reader.GetInt32(1)));
            }
        }

        if (claimed.Count == 0)
        {
            await tx.RollbackAsync(cancellationToken);
            return (claimed, 0);
        }

        var topics = claimed.Select(p => ClusterCatalog.ToGuid(p.TopicId)).ToArray();
        var partitions = claimed.Select(p => p.Partition).ToArray();
        var rows = new List<(TopicIdPartition Partition, long HighWatermark, long LogStart, string? Ms, string? Bytes, string? Policy)>();
        await using (var lockRows = new NpgsqlCommand(
            """
            SELECT p.topic_id, p.partition, p.high_watermark, p.log_start_offset,
                   (SELECT value FROM moldau_topic_configs c WHERE c.topic_id = p.topic_id AND c.name = 'retention.ms'),
                   (SELECT value FROM moldau_topic_configs c WHERE c.topic_id = p.topic_id AND c.name = 'retention.bytes'),
                   (SELECT value FROM moldau_topic_configs c WHERE c.topic_id = p.topic_id AND c.name = 'cleanup.policy')
            FROM moldau_partitions p
            WHERE (p.topic_id, p.partition) IN (SELECT * FROM unnest(@t, @p))
            ORDER BY p.topic_id, p.partition
            FOR UPDATE OF p
            """, connection, tx))
        {
            lockRows.Parameters.AddWithValue("t", topics);
            lockRows.Parameters.AddWithValue("p", partitions);
            await using var reader = await lockRows.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                rows.Add((new TopicIdPartition(ClusterCatalog.FromGuid(reader.GetGuid(0)), reader.GetInt32(1)), reader.GetInt64(2), reader.GetInt64(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4), reader.IsDBNull(5) ? null : reader.GetString(5), reader.IsDBNull(6) ? null : reader.GetString(6)));
            }
        }

        long dropped = 0;
        var nowMs = _time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var row in rows)
        {
            var policy = row.Policy ?? _options.DefaultCleanupPolicy;
            if (!policy.Split(',').Any(p => p.Trim() == "delete"))
            {
                continue;
            }

            // A malformed stored value (SetTopicConfigsAsync refuses them) falls back to the default.
            var retentionMs = (row.Ms is null ? null : ClusterCatalog.ParseLimit(row.Ms)) ?? _options.DefaultRetentionMs;
            var retentionBytes = (row.Bytes is null ? null : ClusterCatalog.ParseLimit(row.Bytes)) ?? _options.DefaultRetentionBytes;
            if (retentionMs < 0 && retentionBytes < 0)
            {
                continue;
            }

            var newStart = await RetentionStartAsync(connection, tx, row.Partition, row.LogStart, nowMs, retentionMs, retentionBytes, cancellationToken);
            if (newStart > row.LogStart)
            {
                // Batches all lie below the high watermark, so newStart (a batch's last offset + 1) never passes it.
                dropped += await ClusterCatalog.DropBatchesBelowAsync(connection, tx, row.Partition, Math.Min(newStart, row.HighWatermark), cancellationToken);
                _logger.LogInformation("retention: partition {Topic}-{Partition} log start {Old} -> {New}", row.Partition.TopicId, row.Partition.Partition, row.LogStart, newStart);
            }
        }

        await using (var done = new NpgsqlCommand(
            """
            UPDATE moldau_partition_jobs SET due_at = clock_timestamp() + @interval, last_run_at = clock_timestamp(), last_broker = @b
            WHERE (topic_id, partition) IN (SELECT * FROM unnest(@t, @p))
            """, connection, tx))
        {
            done.Parameters.AddWithValue("interval", _options.Interval);
            done.Parameters.AddWithValue("b", _brokerId);
            done.Parameters.AddWithValue("t", topics);
            done.Parameters.AddWithValue("p", partitions);
            await done.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return (claimed, dropped);
    }

    /// <summary>
    /// The log start offset retention asks for: past the longest prefix of batches all older than
    /// the time limit (Kafka's rule for segments: a batch's max timestamp before now - retention.ms),
    /// or past the longest prefix whose removal leaves at least retention.bytes (Kafka's: drop while
    /// the size after dropping stays at or above the limit), whichever goes further.
    /// </summary>
    private static async Task<long> RetentionStartAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, TopicIdPartition partition, long logStart, long nowMs, long retentionMs, long retentionBytes,
        CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(
            """
            SELECT max(last_offset) FILTER (WHERE @ms >= 0 AND expired_prefix),
                   max(last_offset) FILTER (WHERE @bytes >= 0 AND bytes_after >= @bytes)
            FROM (
                SELECT last_offset,
                       bool_and(max_timestamp < @cutoff) OVER (ORDER BY last_offset) AS expired_prefix,
                       coalesce(sum(byte_size) OVER (ORDER BY last_offset DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS bytes_after
                FROM moldau_batches
                WHERE topic_id = @t AND partition = @p AND last_offset >= @start
            ) x
            """, connection, tx);
        cmd.Parameters.AddWithValue("t", ClusterCatalog.ToGuid(partition.TopicId));
        cmd.Parameters.AddWithValue("p", partition.Partition);
        cmd.Parameters.AddWithValue("start", logStart);
        cmd.Parameters.AddWithValue("ms", retentionMs);
        cmd.Parameters.AddWithValue("bytes", retentionBytes);
        cmd.Parameters.AddWithValue("cutoff", retentionMs >= 0 && retentionMs <= nowMs ? nowMs - retentionMs : long.MinValue);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        await reader.ReadAsync(cancellationToken);
        var byTime = reader.IsDBNull(0) ? -1 : reader.GetInt64(0);
        var bySize = reader.IsDBNull(1) ? -1 : reader.GetInt64(1);
        return Math.Max(logStart, Math.Max(byTime, bySize) + 1);
    }

    // ---- unreferenced objects ------------------------------------------------------------------

    /// <summary>
    /// When the <c>objects</c> item is due and free: marks objects no batch row refers to (committed
    /// at least the grace ago), deletes from the bucket those marked at least the grace ago, and
    /// removes tombstones older than <see cref="ClusterCleanupOptions.TombstoneRetention"/>.
    /// Returns the keys this call deleted (empty when another broker holds the item).
    /// </summary>
    public async Task<IReadOnlyList<string>> RunObjectDeletionAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _catalog.DataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        if (!await ClaimJobAsync(connection, tx, "objects", cancellationToken))
        {
            await tx.RollbackAsync(cancellationToken);
            return [];
        }

        // Once no batch row refers to an object, none ever will again: batch rows are only inserted
        // by the commit that inserts their object's row. So a mark never has to be taken back.
        await using (var mark = new NpgsqlCommand(
            """
            UPDATE moldau_objects o SET unreferenced_at = clock_timestamp()
            WHERE o.unreferenced_at IS NULL AND o.committed_at < clock_timestamp() - @grace
              AND NOT EXISTS (SELECT 1 FROM moldau_batches b WHERE b.object_id = o.object_id)
            """, connection, tx))
        {
            mark.Parameters.AddWithValue("grace", _options.DeleteGrace);
            await mark.ExecuteNonQueryAsync(cancellationToken);
        }

        var deleted = new List<string>();
        for (var round = 0; round < MaxRounds; round++)
        {
            var due = new List<(long Id, string Key)>();
            await using (var select = new NpgsqlCommand(
                """
                SELECT object_id, object_key FROM moldau_objects
                WHERE unreferenced_at < clock_timestamp() - @grace AND deleted_at IS NULL
                ORDER BY unreferenced_at LIMIT @n
                """, connection, tx))
            {
                select.Parameters.AddWithValue("grace", _options.DeleteGrace);
                select.Parameters.AddWithValue("n", ObjectsPerRound);
                await using var reader = await select.ExecuteReaderAsync(cancellationToken);
                while (await reader.ReadAsync(cancellationToken))
                {
                    due.Add((reader.GetInt64(0), reader.GetString(1)));
                }
            }

            if (due.Count == 0)
            {
                break;
            }

            var gone = await DeleteObjectsAsync(due.Select(d => d.Key), cancellationToken);
            await using (var markDeleted = new NpgsqlCommand(
                "UPDATE moldau_objects SET deleted_at = clock_timestamp() WHERE object_key = ANY(@keys)", connection, tx))
            {
                markDeleted.Parameters.AddWithValue("keys", gone.ToArray());
                await markDeleted.ExecuteNonQueryAsync(cancellationToken);
            }

            deleted.AddRange(gone);
            if (gone.Count < due.Count || due.Count < ObjectsPerRound)
            {
                break; // failed deletes stay due; the next run tries them again
            }
        }

        await using (var expire = new NpgsqlCommand(
            """
            DELETE FROM moldau_objects o WHERE o.deleted_at < clock_timestamp() - @keep
              AND NOT EXISTS (SELECT 1 FROM moldau_batches b WHERE b.object_id = o.object_id)
            """, connection, tx))
        {
            expire.Parameters.AddWithValue("keep", _options.TombstoneRetention);
            await expire.ExecuteNonQueryAsync(cancellationToken);
        }

        await DoneJobAsync(connection, tx, "objects", _options.Interval, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return deleted;
    }

    // ---- orphans -------------------------------------------------------------------------------

    /// <summary>
    /// When the <c>orphans</c> item is due and free: lists the cluster's prefix and sweeps every
    /// object of the produce key scheme with no catalog row whose key time and last-modified time
    /// are both older than <see cref="ClusterCleanupOptions.OrphanGrace"/> (PostgreSQL's clock).
    /// Each is first claimed with a tombstone row, committed before the delete: a commit of the key
    /// racing the sweep either landed first (the sweep leaves the object) or finds the key taken and
    /// fails, so no batch can ever point into a swept object. Returns the keys this call deleted.
    /// </summary>
    public async Task<IReadOnlyList<string>> RunOrphanSweepAsync(CancellationToken cancellationToken = default)
    {
        await using var connection = await _catalog.DataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        if (!await ClaimJobAsync(connection, tx, "orphans", cancellationToken))
        {
            await tx.RollbackAsync(cancellationToken);
            return [];
        }

        DateTimeOffset now;
        await using (var clock = new NpgsqlCommand("SELECT clock_timestamp()", connection, tx))
        {
            // timestamptz comes back as a UTC DateTime.
            now = new DateTimeOffset((DateTime)(await clock.ExecuteScalarAsync(cancellationToken))!);
        }

        var cutoff = now - _options.OrphanGrace;
        var swept = new List<string>();
        var page = new List<ObjectInfo>();
        await foreach (var info in _store.ListAsync(_clusterPrefix, cancellationToken))
        {
            // Only keys of the produce scheme: anything else under the prefix is not ours to judge.
            if (!ObjectKeys.TryGetCreated(info.Key, out var created) || created >= cutoff || info.LastModified >= cutoff)
            {
                continue;
            }

            page.Add(info);
            if (page.Count == ObjectsPerRound)
            {
                swept.AddRange(await SweepAsync(page, cancellationToken));
                page.Clear();
            }
        }

        if (page.Count > 0)
        {
            swept.AddRange(await SweepAsync(page, cancellationToken));
        }

        await DoneJobAsync(connection, tx, "orphans", _options.OrphanSweepInterval, cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return swept;
    }

    private async Task<List<string>> SweepAsync(List<ObjectInfo> candidates, CancellationToken cancellationToken)
    {
        // Autocommit on a connection of its own: the tombstones must be durable before any delete.
        var claimed = new List<string>();
        await using (var tombstone = _catalog.DataSource.CreateCommand(
            """
            INSERT INTO moldau_objects (object_key, size_bytes, broker_id, unreferenced_at)
            SELECT k, s, @b, clock_timestamp() FROM unnest(@k, @s) AS x(k, s)
            ON CONFLICT (object_key) DO NOTHING
            RETURNING object_key
            """))
        {
            tombstone.Parameters.AddWithValue("b", _brokerId);
            tombstone.Parameters.AddWithValue("k", candidates.Select(c => c.Key).ToArray());
            tombstone.Parameters.AddWithValue("s", candidates.Select(c => c.Size).ToArray());
            await using var reader = await tombstone.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                claimed.Add(reader.GetString(0));
            }
        }

        if (claimed.Count == 0)
        {
            return claimed;
        }

        // A delete that fails leaves its tombstone marked: the objects step deletes it a grace later.
        var gone = await DeleteObjectsAsync(claimed, cancellationToken);
        await using (var markDeleted = _catalog.DataSource.CreateCommand("UPDATE moldau_objects SET deleted_at = clock_timestamp() WHERE object_key = ANY(@keys)"))
        {
            markDeleted.Parameters.AddWithValue("keys", gone.ToArray());
            await markDeleted.ExecuteNonQueryAsync(cancellationToken);
        }

        _logger.LogInformation("orphan sweep: deleted {Count} objects uploaded but never committed", gone.Count);
        return gone;
    }

    // ---- shared --------------------------------------------------------------------------------

    private async Task<List<string>> DeleteObjectsAsync(IEnumerable<string> keys, CancellationToken cancellationToken)
    {
        var gone = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(keys, new ParallelOptions { MaxDegreeOfParallelism = DeleteParallelism, CancellationToken = cancellationToken }, async (key, ct) =>
        {
            try
            {
                await _store.DeleteAsync(key, ct);
                gone.Add(key);
            }
            catch (ObjectStoreException e)
            {
                _logger.LogWarning("clean-up: deleting {Key} failed ({Kind}): {Message}; tried again next run", key, e.Kind, e.Message);
            }
        });
        return [.. gone.Order(StringComparer.Ordinal)];
    }

    private static async Task<bool> ClaimJobAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string job, CancellationToken cancellationToken)
    {
        await using var claim = new NpgsqlCommand(
            "SELECT 1 FROM moldau_cleanup_jobs WHERE job = @job AND due_at <= clock_timestamp() FOR UPDATE SKIP LOCKED", connection, tx);
        claim.Parameters.AddWithValue("job", job);
        return await claim.ExecuteScalarAsync(cancellationToken) is not null;
    }

    private async Task DoneJobAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string job, TimeSpan interval, CancellationToken cancellationToken)
    {
        await using var done = new NpgsqlCommand(
            "UPDATE moldau_cleanup_jobs SET due_at = clock_timestamp() + @interval, last_run_at = clock_timestamp(), last_broker = @b WHERE job = @job",
            connection, tx);
        done.Parameters.AddWithValue("job", job);
        done.Parameters.AddWithValue("interval", interval);
        done.Parameters.AddWithValue("b", _brokerId);
        await done.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>What one run of the clean-up job did on this broker.</summary>
/// <param name="PartitionsChecked">The partitions whose retention it checked (claimed by it).</param>
/// <param name="BatchesDropped">How many batch rows retention dropped.</param>
/// <param name="ObjectsDeleted">Unreferenced objects it deleted from the bucket.</param>
/// <param name="OrphansDeleted">Uploaded-but-never-committed objects it swept.</param>
public sealed record CleanupReport(
    IReadOnlyList<TopicIdPartition> PartitionsChecked, long BatchesDropped, IReadOnlyList<string> ObjectsDeleted, IReadOnlyList<string> OrphansDeleted);
