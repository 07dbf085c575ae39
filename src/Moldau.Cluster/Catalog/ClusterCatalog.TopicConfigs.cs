using System.Globalization;
using Moldau.Protocol;
using Npgsql;

namespace Moldau.Cluster.Catalog;

// Topic configs (Kafka's per-topic overrides) and DeleteRecords.
public sealed partial class ClusterCatalog
{
    /// <summary>The topic config keys the clean-up job reads, with their checks.</summary>
    internal const string RetentionMsKey = "retention.ms";

    /// <summary>The size limit key.</summary>
    internal const string RetentionBytesKey = "retention.bytes";

    /// <summary>Kafka's cleanup.policy: retention applies only when it lists <c>delete</c>.</summary>
    internal const string CleanupPolicyKey = "cleanup.policy";

    /// <summary>
    /// Changes a topic's configs in one transaction, as Kafka's IncrementalAlterConfigs does: a key
    /// with a value sets it, a key with null removes the override (the broker default applies again).
    /// <c>retention.ms</c> and <c>retention.bytes</c> must be whole numbers of at least -1 (-1: no limit).
    /// </summary>
    /// <exception cref="ArgumentException">A retention value is malformed.</exception>
    /// <exception cref="KeyNotFoundException">The topic does not exist.</exception>
    public async Task SetTopicConfigsAsync(Uuid topicId, IReadOnlyDictionary<string, string?> changes, CancellationToken cancellationToken = default)
    {
        foreach (var (name, value) in changes)
        {
            if (value is not null && name is RetentionMsKey or RetentionBytesKey && ParseLimit(value) is null)
            {
                throw new ArgumentException($"{name}: '{value}' is not a whole number of at least -1");
            }
        }

        var set = changes.Where(c => c.Value is not null).ToArray();
        var removed = changes.Where(c => c.Value is null).Select(c => c.Key).ToArray();
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using (var topic = new NpgsqlCommand("SELECT 1 FROM moldau_topics WHERE topic_id = @t FOR SHARE", connection, tx))
        {
            topic.Parameters.AddWithValue("t", ToGuid(topicId));
            if (await topic.ExecuteScalarAsync(cancellationToken) is null)
            {
                throw new KeyNotFoundException($"topic {topicId} does not exist");
            }
        }

        await using var batch = new NpgsqlBatch(connection, tx);
        var upsert = new NpgsqlBatchCommand(
            """
            INSERT INTO moldau_topic_configs (topic_id, name, value) SELECT @t, n, v FROM unnest(@n, @v) AS x(n, v)
            ON CONFLICT (topic_id, name) DO UPDATE SET value = excluded.value
            """);
        upsert.Parameters.AddWithValue("t", ToGuid(topicId));
        upsert.Parameters.AddWithValue("n", set.Select(c => c.Key).ToArray());
        upsert.Parameters.AddWithValue("v", set.Select(c => c.Value!).ToArray());
        batch.BatchCommands.Add(upsert);
        var delete = new NpgsqlBatchCommand("DELETE FROM moldau_topic_configs WHERE topic_id = @t AND name = ANY(@n)");
        delete.Parameters.AddWithValue("t", ToGuid(topicId));
        delete.Parameters.AddWithValue("n", removed);
        batch.BatchCommands.Add(delete);
        await batch.ExecuteNonQueryAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
    }

    /// <summary>The configs set on a topic (only its overrides; empty when none or no such topic).</summary>
    public async Task<IReadOnlyDictionary<string, string>> GetTopicConfigsAsync(Uuid topicId, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand("SELECT name, value FROM moldau_topic_configs WHERE topic_id = @t ORDER BY name");
        cmd.Parameters.AddWithValue("t", ToGuid(topicId));
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var configs = new Dictionary<string, string>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
        {
            configs[reader.GetString(0)] = reader.GetString(1);
        }

        return configs;
    }

    /// <summary>Every topic's config overrides, by topic id (topics without any are left out): what each broker mirrors into its image.</summary>
    public async Task<IReadOnlyDictionary<Uuid, IReadOnlyDictionary<string, string>>> ListTopicConfigsAsync(CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand("SELECT topic_id, name, value FROM moldau_topic_configs");
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var all = new Dictionary<Uuid, Dictionary<string, string>>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var id = FromGuid(reader.GetGuid(0));
            if (!all.TryGetValue(id, out var configs))
            {
                all[id] = configs = new Dictionary<string, string>(StringComparer.Ordinal);
            }

            configs[reader.GetString(1)] = reader.GetString(2);
        }

        return all.ToDictionary(e => e.Key, e => (IReadOnlyDictionary<string, string>)e.Value);
    }

    /// <summary>
    /// Kafka's DeleteRecords for one partition: moves the log start offset up to
    /// <paramref name="offset"/> (-1: the high watermark) and drops the batch rows wholly below it
    /// (a batch holding the new start stays; reads start inside it). Never moves the start back, and
    /// never past the high watermark (OFFSET_OUT_OF_RANGE). Answers the new low watermark.
    /// </summary>
    public async Task<DeleteRecordsResult> DeleteRecordsAsync(TopicIdPartition partition, long offset, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using var lockRow = new NpgsqlCommand(
            "SELECT high_watermark, log_start_offset FROM moldau_partitions WHERE topic_id = @t AND partition = @p FOR UPDATE", connection, tx);
        lockRow.Parameters.AddWithValue("t", ToGuid(partition.TopicId));
        lockRow.Parameters.AddWithValue("p", partition.Partition);
        long highWatermark, logStart;
        await using (var reader = await lockRow.ExecuteReaderAsync(cancellationToken))
        {
            if (!await reader.ReadAsync(cancellationToken))
            {
                return new DeleteRecordsResult(DeleteRecordsStatus.UnknownTopicOrPartition, -1);
            }

            highWatermark = reader.GetInt64(0);
            logStart = reader.GetInt64(1);
        }

        var target = offset == -1 ? highWatermark : offset;
        if (target < 0 || target > highWatermark)
        {
            return new DeleteRecordsResult(DeleteRecordsStatus.OffsetOutOfRange, logStart);
        }

        var newStart = Math.Max(logStart, target);
        if (newStart > logStart)
        {
            await DropBatchesBelowAsync(connection, tx, partition, newStart, cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return new DeleteRecordsResult(DeleteRecordsStatus.Ok, newStart);
    }

    /// <summary>
    /// Inside a transaction that holds the partition row's lock: sets its log start offset to
    /// <paramref name="newLogStart"/> and deletes the batch rows whose last offset lies below it.
    /// Also forgets the producers whose last batch lies below it, as Kafka does.
    /// Returns how many batch rows went. The objects they were in are found unreferenced later by
    /// the clean-up job (a scan, not here: two partitions dropping an object's last batches at once
    /// each still see the other's rows).
    /// </summary>
    internal static async Task<int> DropBatchesBelowAsync(
        NpgsqlConnection connection, NpgsqlTransaction tx, TopicIdPartition partition, long newLogStart, CancellationToken cancellationToken)
    {
        await using var batch = new NpgsqlBatch(connection, tx);
        var delete = new NpgsqlBatchCommand("DELETE FROM moldau_batches WHERE topic_id = @t AND partition = @p AND last_offset < @start");
        delete.Parameters.AddWithValue("t", ToGuid(partition.TopicId));
        delete.Parameters.AddWithValue("p", partition.Partition);
        delete.Parameters.AddWithValue("start", newLogStart);
        batch.BatchCommands.Add(delete);
        var advance = new NpgsqlBatchCommand(
            "UPDATE moldau_partitions SET log_start_offset = greatest(log_start_offset, @start) WHERE topic_id = @t AND partition = @p");
        advance.Parameters.AddWithValue("t", ToGuid(partition.TopicId));
        advance.Parameters.AddWithValue("p", partition.Partition);
        advance.Parameters.AddWithValue("start", newLogStart);
        batch.BatchCommands.Add(advance);

        // Kafka's rule (ProducerStateManager.truncateHead): a producer whose last batch lies wholly
        // below the log start is forgotten; its next batch is then taken at any sequence.
        var producers = new NpgsqlBatchCommand(
            """
            DELETE FROM moldau_producer_states
            WHERE topic_id = @t AND partition = @p AND (batches -> -1 ->> 3)::bigint < @start
            """);
        producers.Parameters.AddWithValue("t", ToGuid(partition.TopicId));
        producers.Parameters.AddWithValue("p", partition.Partition);
        producers.Parameters.AddWithValue("start", newLogStart);
        batch.BatchCommands.Add(producers);
        await batch.ExecuteNonQueryAsync(cancellationToken);
        return delete.RecordsAffected;
    }

    /// <summary>A retention limit (-1 or more), or null when malformed.</summary>
    internal static long? ParseLimit(string value) =>
        long.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) && v >= -1 ? v : null;
}

/// <summary>What DeleteRecords did for a partition.</summary>
public enum DeleteRecordsStatus
{
    /// <summary>The log start offset is now the low watermark answered.</summary>
    Ok,

    /// <summary>The offset was above the high watermark (or negative and not -1): nothing changed.</summary>
    OffsetOutOfRange,

    /// <summary>The partition does not exist.</summary>
    UnknownTopicOrPartition,
}

/// <summary>DeleteRecords' answer for a partition.</summary>
/// <param name="Status">What happened.</param>
/// <param name="LowWatermark">The partition's log start offset afterwards (-1 when unknown).</param>
public readonly record struct DeleteRecordsResult(DeleteRecordsStatus Status, long LowWatermark);
