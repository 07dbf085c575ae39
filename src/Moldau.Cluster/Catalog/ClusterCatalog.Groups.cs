using Npgsql;
using NpgsqlTypes;

namespace Moldau.Cluster.Catalog;

// Consumer group persistence: the coordinator epoch, committed offsets, the group's metadata as
// opaque bytes. Every write is conditional on the writer's epoch still being the group's.
public sealed partial class ClusterCatalog
{
    /// <summary>
    /// Makes the lease's broker the coordinator of <paramref name="groupId"/>: in one transaction
    /// checks the lease (as a commit does) and bumps the group's coordinator epoch (1 for a new
    /// group). From then on, writes with any earlier claim fail with
    /// <see cref="GroupCoordinatorFencedException"/>. The new coordinator loads the state with
    /// <see cref="LoadGroupAsync"/> after claiming: every write of a former coordinator that
    /// succeeded committed before the claim, so the load sees it.
    /// </summary>
    /// <exception cref="BrokerFencedException">The lease expired or was replaced: no claim.</exception>
    public async Task<GroupCoordinatorClaim> ClaimGroupAsync(BrokerLease lease, string groupId, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using (var leaseCheck = new NpgsqlCommand(
            "SELECT broker_epoch = @epoch AND lease_expires_at > clock_timestamp() FROM moldau_brokers WHERE broker_id = @id FOR SHARE", connection, tx))
        {
            leaseCheck.Parameters.AddWithValue("id", lease.BrokerId);
            leaseCheck.Parameters.AddWithValue("epoch", lease.BrokerEpoch);
            if (await leaseCheck.ExecuteScalarAsync(cancellationToken) is not true)
            {
                throw new BrokerFencedException($"broker {lease.BrokerId} epoch {lease.BrokerEpoch}: lease expired or replaced, group {groupId} not claimed");
            }
        }

        await using var claim = new NpgsqlCommand(
            """
            INSERT INTO moldau_groups AS g (group_id, coordinator_epoch, coordinator_broker) VALUES (@g, 1, @b)
            ON CONFLICT (group_id) DO UPDATE SET
                coordinator_epoch = g.coordinator_epoch + 1, coordinator_broker = excluded.coordinator_broker, claimed_at = clock_timestamp()
            RETURNING coordinator_epoch
            """, connection, tx);
        claim.Parameters.AddWithValue("g", groupId);
        claim.Parameters.AddWithValue("b", lease.BrokerId);
        var epoch = (long)(await claim.ExecuteScalarAsync(cancellationToken))!;
        await tx.CommitAsync(cancellationToken);
        return new GroupCoordinatorClaim(groupId, epoch, lease.BrokerId);
    }

    /// <summary>A group's stored state (epoch, metadata bytes, committed offsets), read in one snapshot; null when never claimed.</summary>
    public async Task<StoredGroup?> LoadGroupAsync(string groupId, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        await using var batch = new NpgsqlBatch(connection, tx);
        var group = new NpgsqlBatchCommand("SELECT coordinator_epoch, coordinator_broker, metadata FROM moldau_groups WHERE group_id = @g");
        group.Parameters.AddWithValue("g", groupId);
        batch.BatchCommands.Add(group);
        var offsets = new NpgsqlBatchCommand(
            """
            SELECT topic, partition, committed_offset, leader_epoch, metadata, commit_timestamp, expire_timestamp
            FROM moldau_group_offsets WHERE group_id = @g ORDER BY topic, partition
            """);
        offsets.Parameters.AddWithValue("g", groupId);
        batch.BatchCommands.Add(offsets);
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }

        var epoch = reader.GetInt64(0);
        var broker = reader.GetInt32(1);
        var metadata = reader.IsDBNull(2) ? null : reader.GetFieldValue<byte[]>(2);
        await reader.NextResultAsync(cancellationToken);
        var list = new List<GroupOffset>();
        while (await reader.ReadAsync(cancellationToken))
        {
            list.Add(new GroupOffset(
                reader.GetString(0), reader.GetInt32(1), reader.GetInt64(2), reader.GetInt32(3),
                reader.IsDBNull(4) ? null : reader.GetString(4), reader.GetInt64(5), reader.GetInt64(6)));
        }

        return new StoredGroup(groupId, epoch, broker, metadata, list);
    }

    /// <summary>
    /// Stores the group's metadata and members as opaque bytes (the broker keeps Kafka's
    /// GroupMetadataValue there), replacing what was stored; null clears it (an empty group).
    /// </summary>
    /// <exception cref="GroupCoordinatorFencedException">A later claim took the group: nothing was written.</exception>
    public Task StoreGroupMetadataAsync(GroupCoordinatorClaim claim, byte[]? metadata, CancellationToken cancellationToken = default) =>
        WriteGroupAsync(claim, metadata: (metadata, true), offsets: [], deleteOffsets: [], deleteAllOffsets: false, cancellationToken);

    /// <summary>Stores committed offsets (each replaces the partition's previous one), all or none.</summary>
    /// <exception cref="GroupCoordinatorFencedException">A later claim took the group: nothing was written.</exception>
    public Task CommitOffsetsAsync(GroupCoordinatorClaim claim, IReadOnlyList<GroupOffset> offsets, CancellationToken cancellationToken = default) =>
        WriteGroupAsync(claim, metadata: (null, false), offsets, deleteOffsets: [], deleteAllOffsets: false, cancellationToken);

    /// <summary>Removes committed offsets of the given partitions (OffsetDelete, or expiry).</summary>
    /// <exception cref="GroupCoordinatorFencedException">A later claim took the group: nothing was written.</exception>
    public Task DeleteOffsetsAsync(GroupCoordinatorClaim claim, IReadOnlyList<(string Topic, int Partition)> partitions, CancellationToken cancellationToken = default) =>
        WriteGroupAsync(claim, metadata: (null, false), offsets: [], partitions, deleteAllOffsets: false, cancellationToken);

    /// <summary>
    /// DeleteGroups: removes the metadata and every committed offset. The group's row (its epoch)
    /// stays, so a later claim still gets a larger epoch than any former coordinator had.
    /// </summary>
    /// <exception cref="GroupCoordinatorFencedException">A later claim took the group: nothing was written.</exception>
    public Task DeleteGroupAsync(GroupCoordinatorClaim claim, CancellationToken cancellationToken = default) =>
        WriteGroupAsync(claim, metadata: (null, true), offsets: [], deleteOffsets: [], deleteAllOffsets: true, cancellationToken);

    /// <summary>
    /// One transaction: lock the group's row FOR SHARE (a concurrent claim, which updates it, waits
    /// for this transaction, or this one waits for the claim and then reads the new epoch), then run
    /// each write only if the epoch is the writer's, then compare. A fenced writer changes nothing.
    /// </summary>
    private async Task WriteGroupAsync(
        GroupCoordinatorClaim claim,
        (byte[]? Value, bool Store) metadata,
        IReadOnlyList<GroupOffset> offsets,
        IReadOnlyList<(string Topic, int Partition)> deleteOffsets,
        bool deleteAllOffsets,
        CancellationToken cancellationToken)
    {
        const string Current = "EXISTS (SELECT 1 FROM moldau_groups WHERE group_id = @g AND coordinator_epoch = @e)";
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection, tx);
        batch.BatchCommands.Add(GroupCommand(claim, "SELECT coordinator_epoch FROM moldau_groups WHERE group_id = @g FOR SHARE"));
        if (metadata.Store)
        {
            var store = GroupCommand(claim, $"UPDATE moldau_groups SET metadata = @m, metadata_updated_at = clock_timestamp() WHERE group_id = @g AND coordinator_epoch = @e");
            store.Parameters.Add(new NpgsqlParameter("m", NpgsqlDbType.Bytea) { Value = (object?)metadata.Value ?? DBNull.Value });
            batch.BatchCommands.Add(store);
        }

        if (deleteAllOffsets)
        {
            batch.BatchCommands.Add(GroupCommand(claim, $"DELETE FROM moldau_group_offsets WHERE group_id = @g AND {Current}"));
        }

        if (deleteOffsets.Count > 0)
        {
            var delete = GroupCommand(claim,
                $"DELETE FROM moldau_group_offsets WHERE group_id = @g AND (topic, partition) IN (SELECT * FROM unnest(@t, @p)) AND {Current}");
            delete.Parameters.AddWithValue("t", deleteOffsets.Select(d => d.Topic).ToArray());
            delete.Parameters.AddWithValue("p", deleteOffsets.Select(d => d.Partition).ToArray());
            batch.BatchCommands.Add(delete);
        }

        if (offsets.Count > 0)
        {
            var upsert = GroupCommand(claim,
                $"""
                INSERT INTO moldau_group_offsets (group_id, topic, partition, committed_offset, leader_epoch, metadata, commit_timestamp, expire_timestamp)
                SELECT @g, t, p, o, le, m, ct, et FROM unnest(@t, @p, @o, @le, @m, @ct, @et) AS x(t, p, o, le, m, ct, et)
                WHERE {Current}
                ON CONFLICT (group_id, topic, partition) DO UPDATE SET
                    committed_offset = excluded.committed_offset, leader_epoch = excluded.leader_epoch, metadata = excluded.metadata,
                    commit_timestamp = excluded.commit_timestamp, expire_timestamp = excluded.expire_timestamp
                """);
            upsert.Parameters.AddWithValue("t", offsets.Select(o => o.Topic).ToArray());
            upsert.Parameters.AddWithValue("p", offsets.Select(o => o.Partition).ToArray());
            upsert.Parameters.AddWithValue("o", offsets.Select(o => o.Offset).ToArray());
            upsert.Parameters.AddWithValue("le", offsets.Select(o => o.LeaderEpoch).ToArray());
            upsert.Parameters.Add(new NpgsqlParameter("m", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = offsets.Select(o => o.Metadata).ToArray() });
            upsert.Parameters.AddWithValue("ct", offsets.Select(o => o.CommitTimestamp).ToArray());
            upsert.Parameters.AddWithValue("et", offsets.Select(o => o.ExpireTimestamp).ToArray());
            batch.BatchCommands.Add(upsert);
        }

        long? current;
        await using (var reader = await batch.ExecuteReaderAsync(cancellationToken))
        {
            current = await reader.ReadAsync(cancellationToken) ? reader.GetInt64(0) : null;
        }

        if (current != claim.CoordinatorEpoch)
        {
            await tx.RollbackAsync(cancellationToken);
            throw new GroupCoordinatorFencedException(claim, current);
        }

        await tx.CommitAsync(cancellationToken);
    }

    private static NpgsqlBatchCommand GroupCommand(GroupCoordinatorClaim claim, string sql)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddWithValue("g", claim.GroupId);
        command.Parameters.AddWithValue("e", claim.CoordinatorEpoch);
        return command;
    }
}

/// <summary>A broker's coordinatorship of a group: its writes succeed while the epoch is the group's.</summary>
/// <param name="GroupId">The group.</param>
/// <param name="CoordinatorEpoch">The epoch the claim got (larger than every earlier claim's).</param>
/// <param name="BrokerId">The claiming broker.</param>
public sealed record GroupCoordinatorClaim(string GroupId, long CoordinatorEpoch, int BrokerId);

/// <summary>A committed offset, as OffsetCommit carries it.</summary>
/// <param name="Topic">The topic's name (Kafka keys committed offsets by name; the topic need not exist).</param>
/// <param name="Partition">The partition index.</param>
/// <param name="Offset">The committed offset.</param>
/// <param name="LeaderEpoch">The leader epoch the consumer saw, or -1.</param>
/// <param name="Metadata">The commit's metadata string, or null.</param>
/// <param name="CommitTimestamp">When it was committed (Unix ms).</param>
/// <param name="ExpireTimestamp">When it expires (Unix ms), or -1 (the broker's offsets.retention.minutes rule).</param>
public sealed record GroupOffset(string Topic, int Partition, long Offset, int LeaderEpoch, string? Metadata, long CommitTimestamp, long ExpireTimestamp = -1);

/// <summary>A group's stored state.</summary>
/// <param name="GroupId">The group.</param>
/// <param name="CoordinatorEpoch">The epoch of the latest claim.</param>
/// <param name="CoordinatorBroker">The broker that made it.</param>
/// <param name="Metadata">The opaque metadata bytes last stored, or null.</param>
/// <param name="Offsets">The committed offsets, by topic and partition.</param>
public sealed record StoredGroup(string GroupId, long CoordinatorEpoch, int CoordinatorBroker, byte[]? Metadata, IReadOnlyList<GroupOffset> Offsets);

/// <summary>
/// A write of a group's state came from a coordinator whose claim a later one replaced (or the
/// group was never claimed): nothing was written. The broker answers NOT_COORDINATOR and stops
/// serving the group.
/// </summary>
public sealed class GroupCoordinatorFencedException(GroupCoordinatorClaim claim, long? currentEpoch)
    : Exception(currentEpoch is { } e
        ? $"group '{claim.GroupId}': broker {claim.BrokerId} wrote with coordinator epoch {claim.CoordinatorEpoch}, but the group's epoch is now {e}: fenced, nothing written"
        : $"group '{claim.GroupId}': broker {claim.BrokerId} wrote with coordinator epoch {claim.CoordinatorEpoch}, but the group was never claimed: nothing written")
{
    /// <summary>The fenced claim.</summary>
    public GroupCoordinatorClaim Claim { get; } = claim;

    /// <summary>The group's epoch when the write was refused, or null when the group has no row.</summary>
    public long? CurrentEpoch { get; } = currentEpoch;
}
