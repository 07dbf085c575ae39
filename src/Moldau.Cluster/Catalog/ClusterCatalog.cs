using System.Globalization;
using System.Text;
using System.Text.Json;
using Moldau.Protocol;
using Npgsql;
using NpgsqlTypes;

namespace Moldau.Cluster.Catalog;

/// <summary>
/// Cluster mode's catalog in PostgreSQL: broker leases, topics and partitions, and the commit of
/// uploaded objects that assigns offsets. Every operation is parameterized SQL over one
/// <see cref="NpgsqlDataSource"/>; PostgreSQL's clock decides leases, so brokers need no agreed time.
/// Thread-safe: each call takes its own pooled connection.
/// </summary>
public sealed partial class ClusterCatalog : IAsyncDisposable
{
    /// <summary>The channel commits NOTIFY on; the payload lists the partitions and their new high watermarks.</summary>
    public const string CommitChannel = "moldau_commits";

    // pg_notify's payload must stay under 8000 bytes: longer lists go out as several notifications.
    private const int MaxNotifyPayload = 7000;

    private readonly NpgsqlDataSource _dataSource;
    private readonly bool _ownsDataSource;

    private ClusterCatalog(NpgsqlDataSource dataSource, bool ownsDataSource)
    {
        _dataSource = dataSource;
        _ownsDataSource = ownsDataSource;
    }

    /// <summary>The data source the catalog uses (the commit listener opens its own connection from it).</summary>
    public NpgsqlDataSource DataSource => _dataSource;

    /// <summary>Connects, creates or migrates the schema (safe when several brokers start at once) and returns the catalog.</summary>
    public static async Task<ClusterCatalog> OpenAsync(string connectionString, CancellationToken cancellationToken = default)
    {
        var dataSource = NpgsqlDataSource.Create(connectionString);
        try
        {
            await CatalogSchema.MigrateAsync(dataSource, cancellationToken);
            return new ClusterCatalog(dataSource, ownsDataSource: true);
        }
        catch
        {
            await dataSource.DisposeAsync();
            throw;
        }
    }

    /// <summary>The schema version the database holds.</summary>
    public async Task<int> SchemaVersionAsync(CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand("SELECT coalesce(max(version), 0) FROM moldau_schema_version");
        return (int)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    // ---- brokers -------------------------------------------------------------------------------

    /// <summary>
    /// Registers a broker with a lease of <paramref name="leaseDuration"/>. A new registration gets a
    /// new, larger epoch (fencing every earlier one of the id); the same incarnation registering again
    /// while its lease lives keeps its epoch (a retried registration).
    /// </summary>
    /// <exception cref="DuplicateBrokerRegistrationException">Another incarnation holds the id with a live lease.</exception>
    public async Task<BrokerLease> RegisterBrokerAsync(BrokerRegistration registration, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            INSERT INTO moldau_brokers AS b (broker_id, broker_epoch, incarnation, rack, listeners, lease_expires_at)
            VALUES (@id, nextval('moldau_broker_epochs'), @incarnation, @rack, @listeners::jsonb, clock_timestamp() + @lease)
            ON CONFLICT (broker_id) DO UPDATE SET
                broker_epoch = CASE WHEN b.incarnation = excluded.incarnation AND b.lease_expires_at > clock_timestamp()
                                    THEN b.broker_epoch ELSE excluded.broker_epoch END,
                incarnation = excluded.incarnation,
                rack = excluded.rack,
                listeners = excluded.listeners,
                registered_at = clock_timestamp(),
                lease_expires_at = excluded.lease_expires_at
            WHERE b.lease_expires_at <= clock_timestamp() OR b.incarnation = excluded.incarnation
            RETURNING broker_epoch, lease_expires_at
            """);
        cmd.Parameters.AddWithValue("id", registration.BrokerId);
        cmd.Parameters.AddWithValue("incarnation", registration.Incarnation);
        cmd.Parameters.AddWithValue("rack", (object?)registration.Rack ?? DBNull.Value);
        cmd.Parameters.AddWithValue("listeners", JsonSerializer.Serialize(registration.Listeners));
        cmd.Parameters.AddWithValue("lease", leaseDuration);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            throw new DuplicateBrokerRegistrationException($"broker {registration.BrokerId} is registered by another live incarnation");
        }

        return new BrokerLease(registration.BrokerId, reader.GetInt64(0), reader.GetFieldValue<DateTimeOffset>(1));
    }

    /// <summary>Extends a live lease by <paramref name="leaseDuration"/> from now.</summary>
    /// <exception cref="BrokerFencedException">The lease expired or a newer registration replaced it.</exception>
    public async Task<BrokerLease> RenewLeaseAsync(BrokerLease lease, TimeSpan leaseDuration, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            UPDATE moldau_brokers SET lease_expires_at = clock_timestamp() + @lease
            WHERE broker_id = @id AND broker_epoch = @epoch AND lease_expires_at > clock_timestamp()
            RETURNING lease_expires_at
            """);
        cmd.Parameters.AddWithValue("id", lease.BrokerId);
        cmd.Parameters.AddWithValue("epoch", lease.BrokerEpoch);
        cmd.Parameters.AddWithValue("lease", leaseDuration);
        var expires = await cmd.ExecuteScalarAsync(cancellationToken);
        return expires is DateTime or DateTimeOffset
            ? lease with { ExpiresAt = expires is DateTime dt ? new DateTimeOffset(dt, TimeSpan.Zero) : (DateTimeOffset)expires }
            : throw new BrokerFencedException($"broker {lease.BrokerId} epoch {lease.BrokerEpoch}: lease expired or replaced");
    }

    /// <summary>Ends a lease now (a clean shutdown), so Metadata stops naming the broker at once.</summary>
    public async Task ReleaseLeaseAsync(BrokerLease lease, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            "UPDATE moldau_brokers SET lease_expires_at = clock_timestamp() WHERE broker_id = @id AND broker_epoch = @epoch");
        cmd.Parameters.AddWithValue("id", lease.BrokerId);
        cmd.Parameters.AddWithValue("epoch", lease.BrokerEpoch);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>The brokers whose lease lives, by id.</summary>
    public async Task<IReadOnlyList<LiveBroker>> ListLiveBrokersAsync(CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            SELECT broker_id, incarnation, rack, listeners::text, broker_epoch, lease_expires_at
            FROM moldau_brokers WHERE lease_expires_at > clock_timestamp() ORDER BY broker_id
            """);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var brokers = new List<LiveBroker>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var listeners = JsonSerializer.Deserialize<BrokerEndpoint[]>(reader.GetString(3)) ?? [];
            brokers.Add(new LiveBroker(
                new BrokerRegistration(reader.GetInt32(0), reader.GetGuid(1), reader.IsDBNull(2) ? null : reader.GetString(2), listeners),
                reader.GetInt64(4),
                reader.GetFieldValue<DateTimeOffset>(5)));
        }

        return brokers;
    }

    // ---- topics and partitions -----------------------------------------------------------------

    /// <summary>Creates a topic with <paramref name="partitionCount"/> empty partitions and the config overrides <paramref name="configs"/>, in one transaction.</summary>
    /// <exception cref="TopicExistsException">A topic of that name exists.</exception>
    public async Task<Uuid> CreateTopicAsync(string name, int partitionCount, Uuid? topicId = null, IReadOnlyDictionary<string, string>? configs = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(partitionCount, 1);
        var id = topicId ?? Uuid.NewRandom();
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand(
            """
            INSERT INTO moldau_topics (topic_id, name) VALUES (@id, @name);
            INSERT INTO moldau_partitions (topic_id, partition) SELECT @id, p FROM generate_series(0, @count - 1) p;
            """, connection, tx);
        cmd.Parameters.AddWithValue("id", ToGuid(id));
        cmd.Parameters.AddWithValue("name", name);
        cmd.Parameters.AddWithValue("count", partitionCount);
        try
        {
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new TopicExistsException($"topic '{name}' exists");
        }

        if (configs is { Count: > 0 })
        {
            await using var insertConfigs = new NpgsqlCommand(
                "INSERT INTO moldau_topic_configs (topic_id, name, value) SELECT @id, n, v FROM unnest(@n, @v) AS x(n, v)", connection, tx);
            insertConfigs.Parameters.AddWithValue("id", ToGuid(id));
            insertConfigs.Parameters.AddWithValue("n", configs.Keys.ToArray());
            insertConfigs.Parameters.AddWithValue("v", configs.Values.ToArray());
            await insertConfigs.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return id;
    }

    /// <summary>The topic named <paramref name="name"/>, or null.</summary>
    public async Task<TopicInfo?> GetTopicAsync(string name, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            SELECT t.topic_id, (SELECT count(*) FROM moldau_partitions p WHERE p.topic_id = t.topic_id)::int
            FROM moldau_topics t WHERE t.name = @name
            """);
        cmd.Parameters.AddWithValue("name", name);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new TopicInfo(FromGuid(reader.GetGuid(0)), name, reader.GetInt32(1)) : null;
    }

    /// <summary>A partition's high watermark, log start offset and leader epoch, or null when it does not exist.</summary>
    public async Task<PartitionState?> GetPartitionAsync(TopicIdPartition partition, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            "SELECT high_watermark, log_start_offset, leader_epoch FROM moldau_partitions WHERE topic_id = @t AND partition = @p");
        cmd.Parameters.AddWithValue("t", ToGuid(partition.TopicId));
        cmd.Parameters.AddWithValue("p", partition.Partition);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken) ? new PartitionState(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2)) : null;
    }

    // ---- fetch ---------------------------------------------------------------------------------

    /// <summary>
    /// The committed batches of a partition from the one holding <paramref name="fromOffset"/> (or the
    /// log start offset, when later), at most <paramref name="maxBatches"/>, with the partition's state
    /// read in the same snapshot. Null when the partition does not exist.
    /// </summary>
    public async Task<PartitionBatches?> FindBatchesAsync(TopicIdPartition partition, long fromOffset, int maxBatches = 100, CancellationToken cancellationToken = default)
    {
        // One statement, so one snapshot: no batch above the high watermark it returns. The primary
        // key is (topic, partition, last_offset): the first batch whose last offset reaches fromOffset
        // is the one holding it, found by one index range scan.
        await using var cmd = _dataSource.CreateCommand(
            """
            SELECT p.high_watermark, p.log_start_offset, p.leader_epoch,
                   b.base_offset, b.last_offset, o.object_key, b.byte_position, b.byte_size, b.max_timestamp,
                   b.leader_epoch, b.producer_id, b.producer_epoch, b.base_sequence
            FROM moldau_partitions p
            LEFT JOIN LATERAL (
                SELECT * FROM moldau_batches b
                WHERE b.topic_id = p.topic_id AND b.partition = p.partition
                  AND b.last_offset >= greatest(@from, p.log_start_offset)
                ORDER BY b.last_offset
                LIMIT @max
            ) b ON true
            LEFT JOIN moldau_objects o ON o.object_id = b.object_id
            WHERE p.topic_id = @t AND p.partition = @p
            ORDER BY b.last_offset
            """);
        cmd.Parameters.AddWithValue("t", ToGuid(partition.TopicId));
        cmd.Parameters.AddWithValue("p", partition.Partition);
        cmd.Parameters.AddWithValue("from", fromOffset);
        cmd.Parameters.AddWithValue("max", maxBatches);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        PartitionState? state = null;
        var batches = new List<StoredBatch>();
        while (await reader.ReadAsync(cancellationToken))
        {
            state ??= new PartitionState(reader.GetInt64(0), reader.GetInt64(1), reader.GetInt32(2));
            if (!reader.IsDBNull(3))
            {
                batches.Add(new StoredBatch(
                    reader.GetInt64(3), reader.GetInt64(4), reader.GetString(5), reader.GetInt64(6), reader.GetInt32(7),
                    reader.GetInt64(8), reader.GetInt32(9), reader.GetInt64(10), reader.GetInt16(11), reader.GetInt32(12)));
            }
        }

        return state is { } s ? new PartitionBatches(s, batches) : null;
    }

    // ---- commit --------------------------------------------------------------------------------

    /// <summary>
    /// How long a commit's transaction may sit idle between its round trips before PostgreSQL ends
    /// the session (normally milliseconds; shorter than any broker lease).
    /// </summary>
    public static readonly TimeSpan CommitIdleTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Commits an uploaded object in one transaction: checks the broker's lease, records the object
    /// (its key is unique), locks the touched partitions' rows in (topic id, partition) order, checks
    /// each batch against its producer's state, assigns offsets from each high watermark, inserts the
    /// batch rows, advances the high watermarks, stores the producer states and the outcome, and
    /// NOTIFYs <see cref="CommitChannel"/>. Committing the same object key again (the first outcome
    /// unknown) returns the outcome of the commit that landed, without assigning anything.
    /// </summary>
    /// <exception cref="BrokerFencedException">The lease expired or was replaced; nothing was committed.</exception>
    public async Task<CommitResult> CommitObjectAsync(BrokerLease lease, ObjectCommit commit, CancellationToken cancellationToken = default)
    {
        var batches = commit.Batches;
        var partitions = batches.Select(b => new TopicIdPartition(b.TopicId, b.Partition)).Distinct()
            .OrderBy(p => ToGuid(p.TopicId)).ThenBy(p => p.Partition).ToArray();
        var producers = batches.Where(b => b.ProducerId >= 0).Select(b => (b.TopicId, b.Partition, b.ProducerId)).Distinct().ToArray();

        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);

        // Round trip 1: the object, the lease, the partition locks, the producer states. Statements of
        // a batch run in order, so the producer states are read once the partition locks are held.
        await using var read = new NpgsqlBatch(connection, tx);
        var insertObject = new NpgsqlBatchCommand(
            """
            INSERT INTO moldau_objects (object_key, size_bytes, broker_id) VALUES (@key, @size, @broker)
            ON CONFLICT (object_key) DO NOTHING RETURNING object_id
            """);
        insertObject.Parameters.AddWithValue("key", commit.ObjectKey);
        insertObject.Parameters.AddWithValue("size", commit.ObjectSize);
        insertObject.Parameters.AddWithValue("broker", lease.BrokerId);
        read.BatchCommands.Add(insertObject);

        // A new statement sees what committed meanwhile: the first commit of the key if the insert
        // above waited for it and found it.
        var existing = new NpgsqlBatchCommand(
            "SELECT result_status, result_base_offset, result_last_offset FROM moldau_objects WHERE object_key = @key");
        existing.Parameters.AddWithValue("key", commit.ObjectKey);
        read.BatchCommands.Add(existing);

        // FOR SHARE: a re-registration of the id (a new epoch) waits until this commit is done.
        var leaseCheck = new NpgsqlBatchCommand(
            "SELECT broker_epoch = @epoch AND lease_expires_at > clock_timestamp() FROM moldau_brokers WHERE broker_id = @id FOR SHARE");
        leaseCheck.Parameters.AddWithValue("id", lease.BrokerId);
        leaseCheck.Parameters.AddWithValue("epoch", lease.BrokerEpoch);
        read.BatchCommands.Add(leaseCheck);

        // The locking clause applies after the sort: rows are locked in (topic_id, partition) order,
        // the same in every commit, so two commits never wait on each other in a cycle.
        var lockPartitions = new NpgsqlBatchCommand(
            """
            SELECT topic_id, partition, high_watermark, log_start_offset, leader_epoch
            FROM moldau_partitions
            WHERE (topic_id, partition) IN (SELECT * FROM unnest(@topics, @partitions))
            ORDER BY topic_id, partition
            FOR UPDATE
            """);
        lockPartitions.Parameters.AddWithValue("topics", partitions.Select(p => ToGuid(p.TopicId)).ToArray());
        lockPartitions.Parameters.AddWithValue("partitions", partitions.Select(p => p.Partition).ToArray());
        read.BatchCommands.Add(lockPartitions);

        var readProducers = new NpgsqlBatchCommand(
            """
            SELECT topic_id, partition, producer_id, producer_epoch, batches::text
            FROM moldau_producer_states
            WHERE (topic_id, partition, producer_id) IN (SELECT * FROM unnest(@topics, @partitions, @producers))
            """);
        readProducers.Parameters.AddWithValue("topics", producers.Select(p => ToGuid(p.TopicId)).ToArray());
        readProducers.Parameters.AddWithValue("partitions", producers.Select(p => p.Partition).ToArray());
        readProducers.Parameters.AddWithValue("producers", producers.Select(p => p.ProducerId).ToArray());
        read.BatchCommands.Add(readProducers);

        // A broker paused (SIGSTOP, a VM stall) between this transaction's round trips would hold
        // its partition locks, and the FOR SHARE on its broker row, for as long as it is paused:
        // other brokers' commits of those partitions would wait, their lease renewals behind their
        // own waiting commits (the FOR SHARE), until every lease had lapsed. PostgreSQL ends such a
        // session instead, well inside any lease, so the commit rolls back (its retry finds the
        // lease lapsed and is fenced) and the locks are released. Last in the batch (it returns
        // nothing to read); in force from the transaction's first idle moment.
        read.BatchCommands.Add(new NpgsqlBatchCommand(
            $"SET LOCAL idle_in_transaction_session_timeout = {(int)CommitIdleTimeout.TotalMilliseconds}"));

        bool inserted;
        long objectId;
        short[]? priorStatus = null;
        long[]? priorBase = null, priorLast = null;
        bool leaseValid;
        var rows = new Dictionary<TopicIdPartition, PartitionRow>();
        var states = new Dictionary<(Uuid, int, long), ProducerState>();
        await using (var reader = await read.ExecuteReaderAsync(cancellationToken))
        {
            inserted = await reader.ReadAsync(cancellationToken);
            objectId = inserted ? reader.GetInt64(0) : -1;
            await reader.NextResultAsync(cancellationToken);
            if (await reader.ReadAsync(cancellationToken) && !reader.IsDBNull(0))
            {
                priorStatus = reader.GetFieldValue<short[]>(0);
                priorBase = reader.GetFieldValue<long[]>(1);
                priorLast = reader.GetFieldValue<long[]>(2);
            }

            await reader.NextResultAsync(cancellationToken);
            leaseValid = await reader.ReadAsync(cancellationToken) && reader.GetBoolean(0);
            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                rows[new TopicIdPartition(FromGuid(reader.GetGuid(0)), reader.GetInt32(1))] =
                    new PartitionRow(reader.GetInt64(2), reader.GetInt64(3), reader.GetInt32(4));
            }

            await reader.NextResultAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                states[(FromGuid(reader.GetGuid(0)), reader.GetInt32(1), reader.GetInt64(2))] =
                    ProducerState.FromRow(reader.GetInt16(3), reader.GetString(4));
            }
        }

        if (!inserted)
        {
            // The object was committed before: the outcome then is the outcome now, whatever the lease
            // says (those records are durable and were, or will be, acknowledged).
            await tx.RollbackAsync(cancellationToken);
            if (priorStatus is null || priorStatus.Length != batches.Count)
            {
                throw new InvalidOperationException(
                    $"object {commit.ObjectKey} was committed with {priorStatus?.Length ?? 0} batches, not {batches.Count}");
            }

            var prior = new BatchCommitResult[batches.Count];
            for (var i = 0; i < prior.Length; i++)
            {
                var known = rows.TryGetValue(new TopicIdPartition(batches[i].TopicId, batches[i].Partition), out var r);
                prior[i] = new BatchCommitResult((BatchCommitStatus)priorStatus[i], priorBase![i], priorLast![i], known ? r.LogStartOffset : -1);
            }

            return new CommitResult(prior, AlreadyCommitted: true);
        }

        if (!leaseValid)
        {
            await tx.RollbackAsync(cancellationToken);
            throw new BrokerFencedException($"broker {lease.BrokerId} epoch {lease.BrokerEpoch}: lease expired or replaced, object {commit.ObjectKey} not committed");
        }

        // Offsets, in buffer order; the producer states change as each batch is taken.
        var results = new BatchCommitResult[batches.Count];
        var appended = new List<(BatchToCommit Batch, long BaseOffset, int LeaderEpoch)>(batches.Count);
        var touchedStates = new HashSet<(Uuid, int, long)>();
        for (var i = 0; i < batches.Count; i++)
        {
            var b = batches[i];
            var tp = new TopicIdPartition(b.TopicId, b.Partition);
            if (!rows.TryGetValue(tp, out var row))
            {
                results[i] = new BatchCommitResult(BatchCommitStatus.UnknownTopicOrPartition, -1, -1, -1);
                continue;
            }

            if (b.ProducerId >= 0)
            {
                var key = (b.TopicId, b.Partition, b.ProducerId);
                states.TryGetValue(key, out var state);
                var (status, dupBase, dupLast) = ProducerState.Check(state, b.ProducerEpoch, b.BaseSequence, b.RecordCount);
                if (status != BatchCommitStatus.Appended)
                {
                    results[i] = new BatchCommitResult(status, dupBase, dupLast, status == BatchCommitStatus.Duplicate ? row.LogStartOffset : -1);
                    continue;
                }

                if (state is null)
                {
                    state = new ProducerState(b.ProducerEpoch);
                    states[key] = state;
                }

                state.Record(b.ProducerEpoch, b.BaseSequence, b.RecordCount, row.HighWatermark);
                touchedStates.Add(key);
            }

            results[i] = new BatchCommitResult(BatchCommitStatus.Appended, row.HighWatermark, row.HighWatermark + b.RecordCount - 1, row.LogStartOffset);
            appended.Add((b, row.HighWatermark, row.LeaderEpoch));
            rows[tp] = row with { HighWatermark = row.HighWatermark + b.RecordCount, Advanced = true };
        }

        // Round trip 2: every write, then COMMIT.
        await using var write = new NpgsqlBatch(connection, tx);
        if (appended.Count > 0)
        {
            var insertBatches = new NpgsqlBatchCommand(
                """
                INSERT INTO moldau_batches (topic_id, partition, base_offset, last_offset, object_id, byte_position, byte_size,
                                            max_timestamp, leader_epoch, producer_id, producer_epoch, base_sequence)
                SELECT t, p, base, base + n - 1, @object, pos, size, ts, le, pid, pe, seq
                FROM unnest(@t, @p, @base, @n, @pos, @size, @ts, @le, @pid, @pe, @seq) AS x(t, p, base, n, pos, size, ts, le, pid, pe, seq)
                """);
            insertBatches.Parameters.AddWithValue("object", objectId);
            insertBatches.Parameters.AddWithValue("t", appended.Select(a => ToGuid(a.Batch.TopicId)).ToArray());
            insertBatches.Parameters.AddWithValue("p", appended.Select(a => a.Batch.Partition).ToArray());
            insertBatches.Parameters.AddWithValue("base", appended.Select(a => a.BaseOffset).ToArray());
            insertBatches.Parameters.AddWithValue("n", appended.Select(a => (long)a.Batch.RecordCount).ToArray());
            insertBatches.Parameters.AddWithValue("pos", appended.Select(a => a.Batch.BytePosition).ToArray());
            insertBatches.Parameters.AddWithValue("size", appended.Select(a => a.Batch.ByteSize).ToArray());
            insertBatches.Parameters.AddWithValue("ts", appended.Select(a => a.Batch.MaxTimestamp).ToArray());
            insertBatches.Parameters.AddWithValue("le", appended.Select(a => a.LeaderEpoch).ToArray());
            insertBatches.Parameters.AddWithValue("pid", appended.Select(a => a.Batch.ProducerId).ToArray());
            insertBatches.Parameters.AddWithValue("pe", appended.Select(a => a.Batch.ProducerEpoch).ToArray());
            insertBatches.Parameters.AddWithValue("seq", appended.Select(a => a.Batch.BaseSequence).ToArray());
            write.BatchCommands.Add(insertBatches);

            var advanced = rows.Where(r => r.Value.Advanced).ToArray();
            var advance = new NpgsqlBatchCommand(
                """
                UPDATE moldau_partitions p SET high_watermark = x.hw
                FROM unnest(@t, @p, @hw) AS x(t, p, hw)
                WHERE p.topic_id = x.t AND p.partition = x.p
                """);
            advance.Parameters.AddWithValue("t", advanced.Select(r => ToGuid(r.Key.TopicId)).ToArray());
            advance.Parameters.AddWithValue("p", advanced.Select(r => r.Key.Partition).ToArray());
            advance.Parameters.AddWithValue("hw", advanced.Select(r => r.Value.HighWatermark).ToArray());
            write.BatchCommands.Add(advance);

            foreach (var payload in NotifyPayloads(advanced.Select(r => (r.Key, r.Value.HighWatermark))))
            {
                var notify = new NpgsqlBatchCommand("SELECT pg_notify(@channel, @payload)");
                notify.Parameters.AddWithValue("channel", CommitChannel);
                notify.Parameters.AddWithValue("payload", payload);
                write.BatchCommands.Add(notify);
            }
        }

        if (touchedStates.Count > 0)
        {
            var touched = touchedStates.ToArray();
            var storeStates = new NpgsqlBatchCommand(
                """
                INSERT INTO moldau_producer_states (topic_id, partition, producer_id, producer_epoch, batches)
                SELECT t, p, pid, pe, b::jsonb FROM unnest(@t, @p, @pid, @pe, @b) AS x(t, p, pid, pe, b)
                ON CONFLICT (topic_id, partition, producer_id) DO UPDATE SET
                    producer_epoch = excluded.producer_epoch, batches = excluded.batches, updated_at = clock_timestamp()
                """);
            storeStates.Parameters.AddWithValue("t", touched.Select(k => ToGuid(k.Item1)).ToArray());
            storeStates.Parameters.AddWithValue("p", touched.Select(k => k.Item2).ToArray());
            storeStates.Parameters.AddWithValue("pid", touched.Select(k => k.Item3).ToArray());
            storeStates.Parameters.AddWithValue("pe", touched.Select(k => states[k].Epoch).ToArray());
            storeStates.Parameters.Add(new NpgsqlParameter("b", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = touched.Select(k => states[k].BatchesJson()).ToArray() });
            write.BatchCommands.Add(storeStates);
        }

        var outcome = new NpgsqlBatchCommand(
            "UPDATE moldau_objects SET result_status = @s, result_base_offset = @b, result_last_offset = @l WHERE object_id = @id");
        outcome.Parameters.AddWithValue("id", objectId);
        outcome.Parameters.AddWithValue("s", results.Select(r => (short)r.Status).ToArray());
        outcome.Parameters.AddWithValue("b", results.Select(r => r.BaseOffset).ToArray());
        outcome.Parameters.AddWithValue("l", results.Select(r => r.LastOffset).ToArray());
        write.BatchCommands.Add(outcome);

        await write.ExecuteNonQueryAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return new CommitResult(results, AlreadyCommitted: false);
    }

    /// <summary>
    /// The NOTIFY payloads for partitions and their new high watermarks: entries
    /// <c>topicId:partition:highWatermark</c> (the topic id in Kafka's base64 form) separated by
    /// spaces, split so each payload stays under PostgreSQL's limit.
    /// </summary>
    internal static IEnumerable<string> NotifyPayloads(IEnumerable<(TopicIdPartition Partition, long HighWatermark)> partitions)
    {
        var sb = new StringBuilder();
        foreach (var (tp, hw) in partitions)
        {
            var entry = string.Create(CultureInfo.InvariantCulture, $"{tp.TopicId}:{tp.Partition}:{hw}");
            if (sb.Length > 0 && sb.Length + 1 + entry.Length > MaxNotifyPayload)
            {
                yield return sb.ToString();
                sb.Clear();
            }

            if (sb.Length > 0)
            {
                sb.Append(' ');
            }

            sb.Append(entry);
        }

        if (sb.Length > 0)
        {
            yield return sb.ToString();
        }
    }

    /// <summary>The PostgreSQL uuid of a Kafka UUID (same 16 bytes, same order).</summary>
    internal static Guid ToGuid(Uuid id)
    {
        Span<byte> b = stackalloc byte[16];
        id.WriteTo(b);
        return new Guid(b, bigEndian: true);
    }

    /// <summary>The Kafka UUID of a PostgreSQL uuid.</summary>
    internal static Uuid FromGuid(Guid id)
    {
        Span<byte> b = stackalloc byte[16];
        id.TryWriteBytes(b, bigEndian: true, out _);
        return Uuid.FromBytes(b);
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync()
    {
        if (_ownsDataSource)
        {
            await _dataSource.DisposeAsync();
        }
    }

    private readonly record struct PartitionRow(long HighWatermark, long LogStartOffset, int LeaderEpoch, bool Advanced = false);
}
