namespace Moldau.Cluster.Catalog;

internal static partial class CatalogSchema
{
    /// <summary>
    /// Topic configs, the clean-up job's work items, the object life cycle columns it needs, and
    /// consumer group persistence (coordinator epochs, committed offsets, opaque group metadata).
    /// Self-contained: it only adds tables, columns, a trigger and rows.
    /// </summary>
    private static string JobsAndGroupsMigration() =>
        """
        -- Kafka's topic configs (retention.ms, retention.bytes, ...): only the keys set on the topic;
        -- a missing key means the broker's default.
        CREATE TABLE moldau_topic_configs (
            topic_id uuid NOT NULL REFERENCES moldau_topics ON DELETE CASCADE,
            name     text NOT NULL,
            value    text NOT NULL,
            PRIMARY KEY (topic_id, name)
        );

        -- An object's life after its last batch row is gone: unreferenced_at when the clean-up job
        -- found it unreferenced (or swept it as an orphan), deleted_at when its bytes were deleted
        -- from the bucket. The row stays as a tombstone a while longer, so a very late commit or
        -- retry of the key finds it taken instead of committing batches into a deleted object.
        ALTER TABLE moldau_objects ADD COLUMN unreferenced_at timestamptz;
        ALTER TABLE moldau_objects ADD COLUMN deleted_at timestamptz;
        CREATE INDEX moldau_objects_live ON moldau_objects (committed_at) WHERE unreferenced_at IS NULL;
        CREATE INDEX moldau_objects_unreferenced ON moldau_objects (unreferenced_at) WHERE unreferenced_at IS NOT NULL;

        -- The clean-up job's global work items, claimed with FOR UPDATE SKIP LOCKED: one broker at a
        -- time does each; a dead broker's claim ends with its transaction.
        CREATE TABLE moldau_cleanup_jobs (
            job         text        PRIMARY KEY,
            due_at      timestamptz NOT NULL DEFAULT '-infinity',
            last_run_at timestamptz,
            last_broker integer
        );
        INSERT INTO moldau_cleanup_jobs (job) VALUES ('objects'), ('orphans');

        -- Per-partition work items (retention), one row per partition, kept by a trigger so every
        -- way of creating partitions is covered; the row, not the partition, is what a broker claims.
        CREATE TABLE moldau_partition_jobs (
            topic_id    uuid        NOT NULL,
            partition   integer     NOT NULL,
            due_at      timestamptz NOT NULL DEFAULT '-infinity',
            last_run_at timestamptz,
            last_broker integer,
            PRIMARY KEY (topic_id, partition),
            FOREIGN KEY (topic_id, partition) REFERENCES moldau_partitions ON DELETE CASCADE
        );
        CREATE INDEX moldau_partition_jobs_due ON moldau_partition_jobs (due_at);
        INSERT INTO moldau_partition_jobs (topic_id, partition) SELECT topic_id, partition FROM moldau_partitions;
        CREATE FUNCTION moldau_partition_jobs_add() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO moldau_partition_jobs (topic_id, partition) VALUES (NEW.topic_id, NEW.partition)
            ON CONFLICT DO NOTHING;
            RETURN NULL;
        END $$;
        CREATE TRIGGER moldau_partition_jobs_add AFTER INSERT ON moldau_partitions
            FOR EACH ROW EXECUTE FUNCTION moldau_partition_jobs_add();

        -- Consumer groups: the coordinator epoch fences every write of a former coordinator.
        CREATE TABLE moldau_groups (
            group_id            text        PRIMARY KEY,
            coordinator_epoch   bigint      NOT NULL,
            coordinator_broker  integer     NOT NULL,
            claimed_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
            metadata            bytea,
            metadata_updated_at timestamptz
        );

        CREATE TABLE moldau_group_offsets (
            group_id         text    NOT NULL REFERENCES moldau_groups ON DELETE CASCADE,
            topic            text    NOT NULL,
            partition        integer NOT NULL,
            committed_offset bigint  NOT NULL,
            leader_epoch     integer NOT NULL,
            metadata         text,
            commit_timestamp bigint  NOT NULL,
            expire_timestamp bigint  NOT NULL,
            PRIMARY KEY (group_id, topic, partition)
        );
        """;
}
