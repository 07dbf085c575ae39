using Moldau.Protocol;
using Npgsql;

namespace Moldau.Cluster.Catalog;

/// <summary>What a broker in cluster mode reads and writes besides commits (schema version 2).</summary>
public sealed partial class ClusterCatalog
{
    /// <summary>
    /// The cluster's id (Kafka's cluster.id, 22 characters of base64): the first broker to ask
    /// stores <paramref name="proposed"/>, every later one reads it, so all brokers report one id.
    /// </summary>
    public async Task<string> ClusterIdAsync(string proposed, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            INSERT INTO moldau_cluster (cluster_id) VALUES (@id) ON CONFLICT (singleton) DO NOTHING;
            SELECT cluster_id FROM moldau_cluster;
            """);
        cmd.Parameters.AddWithValue("id", proposed);
        return (string)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>
    /// The membership version for the live brokers <paramref name="members"/> (sorted ids, comma
    /// separated): moved forward by one when they differ from the members last recorded, else the
    /// recorded one. Every broker that sees a change moves it, so the version only grows and all
    /// brokers that agree on the members agree on it: Metadata reports it as each partition's
    /// leader epoch.
    /// </summary>
    public async Task<long> MembershipVersionAsync(string members, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            UPDATE moldau_cluster SET membership_version = membership_version + 1, members = @m WHERE members <> @m;
            SELECT membership_version FROM moldau_cluster;
            """);
        cmd.Parameters.AddWithValue("m", members);
        return (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Every topic with its partition count.</summary>
    public async Task<IReadOnlyList<TopicInfo>> ListTopicsAsync(CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand(
            """
            SELECT t.topic_id, t.name, (SELECT count(*) FROM moldau_partitions p WHERE p.topic_id = t.topic_id)::int
            FROM moldau_topics t
            """);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var topics = new List<TopicInfo>();
        while (await reader.ReadAsync(cancellationToken))
        {
            topics.Add(new TopicInfo(FromGuid(reader.GetGuid(0)), reader.GetString(1), reader.GetInt32(2)));
        }

        return topics;
    }

    /// <summary>
    /// Deletes a topic and its partitions; false when it did not exist. Its batch rows and producer
    /// states are removed too; the objects holding its batches stay until the clean-up job (not
    /// built yet) deletes objects no batch references.
    /// </summary>
    public async Task<bool> DeleteTopicAsync(Uuid topicId, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using (var rows = new NpgsqlCommand(
            """
            DELETE FROM moldau_batches WHERE topic_id = @id;
            DELETE FROM moldau_producer_states WHERE topic_id = @id;
            """, connection, tx))
        {
            rows.Parameters.AddWithValue("id", ToGuid(topicId));
            await rows.ExecuteNonQueryAsync(cancellationToken);
        }

        await using var topic = new NpgsqlCommand("DELETE FROM moldau_topics WHERE topic_id = @id", connection, tx);
        topic.Parameters.AddWithValue("id", ToGuid(topicId));
        var deleted = await topic.ExecuteNonQueryAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return deleted > 0;
    }

    /// <summary>Grows a topic to <paramref name="count"/> partitions; false when it has that many or more, or does not exist.</summary>
    public async Task<bool> AddPartitionsAsync(Uuid topicId, int count, CancellationToken cancellationToken = default)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        int have;
        await using (var lockTopic = new NpgsqlCommand(
            """
            SELECT (SELECT count(*) FROM moldau_partitions p WHERE p.topic_id = t.topic_id)::int
            FROM moldau_topics t WHERE t.topic_id = @id FOR UPDATE
            """, connection, tx))
        {
            lockTopic.Parameters.AddWithValue("id", ToGuid(topicId));
            if (await lockTopic.ExecuteScalarAsync(cancellationToken) is not int found)
            {
                return false;
            }

            have = found;
        }

        if (count <= have)
        {
            return false;
        }

        await using var add = new NpgsqlCommand("INSERT INTO moldau_partitions (topic_id, partition) SELECT @id, p FROM generate_series(@from, @count - 1) p", connection, tx);
        add.Parameters.AddWithValue("id", ToGuid(topicId));
        add.Parameters.AddWithValue("from", have);
        add.Parameters.AddWithValue("count", count);
        await add.ExecuteNonQueryAsync(cancellationToken);
        await tx.CommitAsync(cancellationToken);
        return true;
    }

    /// <summary>
    /// Hands out a block of <paramref name="blockSize"/> producer ids no other broker gets (a
    /// sequence: never rolled back, so a block is never handed out twice, even after a crash).
    /// Returns the block's first id.
    /// </summary>
    public async Task<long> AllocateProducerIdBlockAsync(int blockSize, CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand("SELECT nextval('moldau_producer_id_blocks')");
        var block = (long)(await cmd.ExecuteScalarAsync(cancellationToken))!;
        return block * blockSize;
    }

    /// <summary>Every partition's high watermark and log start offset (the poll behind LISTEN/NOTIFY, and the resync after a lost LISTEN).</summary>
    public async Task<IReadOnlyList<(TopicIdPartition Partition, PartitionState State)>> ListPartitionStatesAsync(CancellationToken cancellationToken = default)
    {
        await using var cmd = _dataSource.CreateCommand("SELECT topic_id, partition, high_watermark, log_start_offset, leader_epoch FROM moldau_partitions");
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        var states = new List<(TopicIdPartition, PartitionState)>();
        while (await reader.ReadAsync(cancellationToken))
        {
            states.Add((new TopicIdPartition(FromGuid(reader.GetGuid(0)), reader.GetInt32(1)), new PartitionState(reader.GetInt64(2), reader.GetInt64(3), reader.GetInt32(4))));
        }

        return states;
    }
}
