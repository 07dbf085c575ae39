using Npgsql;

namespace Moldau.Cluster.Catalog;

/// <summary>
/// The catalog's tables in PostgreSQL, versioned: each migration runs once, in order, and the
/// versions applied are rows of <c>moldau_schema_version</c>. Brokers starting at once migrate one
/// after the other under a transaction-scoped advisory lock, so none sees half a schema.
/// </summary>
internal static partial class CatalogSchema
{
    /// <summary>The schema version this code reads and writes.</summary>
    public const int CurrentVersion = 3;

    // An arbitrary constant key for pg_advisory_xact_lock: "Moldau" in ASCII.
    private const long MigrationLockKey = 0x4D6F6C646175;

    private static readonly string[] Migrations =
    [
        // Version 1: membership, topics and partitions, objects and the batches they hold, producer state.
        """
        CREATE TABLE moldau_brokers (
            broker_id        integer     PRIMARY KEY,
            broker_epoch     bigint      NOT NULL,
            incarnation      uuid        NOT NULL,
            rack             text,
            listeners        jsonb       NOT NULL,
            registered_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
            lease_expires_at timestamptz NOT NULL
        );
        CREATE SEQUENCE moldau_broker_epochs;

        CREATE TABLE moldau_topics (
            topic_id   uuid        PRIMARY KEY,
            name       text        NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );

        CREATE TABLE moldau_partitions (
            topic_id         uuid    NOT NULL REFERENCES moldau_topics ON DELETE CASCADE,
            partition        integer NOT NULL,
            high_watermark   bigint  NOT NULL DEFAULT 0,
            log_start_offset bigint  NOT NULL DEFAULT 0,
            leader_epoch     integer NOT NULL DEFAULT 0,
            PRIMARY KEY (topic_id, partition)
        );

        CREATE TABLE moldau_objects (
            object_id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            object_key         text        NOT NULL UNIQUE,
            size_bytes         bigint      NOT NULL,
            broker_id          integer     NOT NULL,
            committed_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
            result_status      smallint[],
            result_base_offset bigint[],
            result_last_offset bigint[]
        );

        CREATE TABLE moldau_batches (
            topic_id       uuid     NOT NULL,
            partition      integer  NOT NULL,
            base_offset    bigint   NOT NULL,
            last_offset    bigint   NOT NULL,
            object_id      bigint   NOT NULL REFERENCES moldau_objects,
            byte_position  bigint   NOT NULL,
            byte_size      integer  NOT NULL,
            max_timestamp  bigint   NOT NULL,
            leader_epoch   integer  NOT NULL,
            producer_id    bigint   NOT NULL,
            producer_epoch smallint NOT NULL,
            base_sequence  integer  NOT NULL,
            PRIMARY KEY (topic_id, partition, last_offset)
        );
        CREATE INDEX moldau_batches_object ON moldau_batches (object_id);

        CREATE TABLE moldau_producer_states (
            topic_id       uuid        NOT NULL,
            partition      integer     NOT NULL,
            producer_id    bigint      NOT NULL,
            producer_epoch smallint    NOT NULL,
            batches        jsonb       NOT NULL,
            updated_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (topic_id, partition, producer_id)
        );
        """,

        // Version 2: topic configs, the clean-up job's work items and object life cycle, consumer groups.
        JobsAndGroupsMigration(),

        // Version 3: the cluster's identity and membership version (the leader epoch Metadata
        // reports), and producer id blocks handed out across brokers.
        """
        CREATE TABLE moldau_cluster (
            singleton          boolean PRIMARY KEY DEFAULT true CHECK (singleton),
            cluster_id         text    NOT NULL,
            membership_version bigint  NOT NULL DEFAULT 0,
            members            text    NOT NULL DEFAULT ''
        );
        CREATE SEQUENCE moldau_producer_id_blocks MINVALUE 0 START 0;
        """,
    ];

    /// <summary>
    /// Brings the database to <see cref="CurrentVersion"/>; refuses a database a newer Moldau has
    /// migrated past what this code knows. Returns the version found before migrating (0 when new).
    /// </summary>
    public static async Task<int> MigrateAsync(NpgsqlDataSource dataSource, CancellationToken cancellationToken = default)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using (var prepare = new NpgsqlCommand(
            """
            SELECT pg_advisory_xact_lock(@key);
            CREATE TABLE IF NOT EXISTS moldau_schema_version (
                version    integer     PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT clock_timestamp()
            );
            """, connection, tx))
        {
            prepare.Parameters.AddWithValue("key", MigrationLockKey);
            await prepare.ExecuteNonQueryAsync(cancellationToken);
        }

        int found;
        await using (var read = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM moldau_schema_version", connection, tx))
        {
            found = (int)(await read.ExecuteScalarAsync(cancellationToken))!;
        }

        if (found > CurrentVersion)
        {
            throw new InvalidOperationException(
                $"the cluster catalog has schema version {found}, newer than the {CurrentVersion} this Moldau knows: upgrade this broker");
        }

        for (var version = found + 1; version <= CurrentVersion; version++)
        {
            await using var migrate = new NpgsqlCommand(Migrations[version - 1], connection, tx);
            await migrate.ExecuteNonQueryAsync(cancellationToken);
            await using var record = new NpgsqlCommand("INSERT INTO moldau_schema_version (version) VALUES (@v)", connection, tx);
            record.Parameters.AddWithValue("v", version);
            await record.ExecuteNonQueryAsync(cancellationToken);
        }

        await tx.CommitAsync(cancellationToken);
        return found;
    }
}
