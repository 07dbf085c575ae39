using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;
using Moldau.Protocol;
using Npgsql;

namespace Moldau.Cluster.Tests.Catalog;

/// <summary>The object commit against a real PostgreSQL: offsets, concurrency, retries, lookups, NOTIFY.</summary>
[Collection(PostgresCollection.Name)]
public sealed class CommitTests(PostgresServer server)
{
    private static BatchToCommit Batch(Uuid topic, int partition, int records, long position = 0, long pid = -1, short epoch = -1, int seq = -1) =>
        new(topic, partition, position, 100 + records, records, 1_700_000_000_000 + records, pid, epoch, seq);

    private static ObjectCommit Object(params BatchToCommit[] batches) =>
        new($"objects/{Guid.NewGuid():N}", batches.Sum(b => (long)b.ByteSize), batches);

    [Fact]
    public async Task Schema_is_created_once_when_catalogs_open_at_once_and_again_later()
    {
        await using var db = await server.CreateDatabaseAsync();
        var opened = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => ClusterCatalog.OpenAsync(db.ConnectionString)));
        foreach (var c in opened)
        {
            Assert.Equal(CatalogSchema.CurrentVersion, await c.SchemaVersionAsync());
            await c.DisposeAsync();
        }

        await using var again = await ClusterCatalog.OpenAsync(db.ConnectionString);
        await using var count = again.DataSource.CreateCommand("SELECT count(*) FROM moldau_schema_version");
        Assert.Equal((long)CatalogSchema.CurrentVersion, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task A_commit_assigns_contiguous_offsets_per_partition_in_buffer_order()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("orders", 3);
        var first = await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 0, 3), Batch(t, 1, 2), Batch(t, 0, 4, 103), Batch(t, 2, 1)));
        Assert.False(first.AlreadyCommitted);
        Assert.Equal(
            [(0L, 2L), (0L, 1L), (3L, 6L), (0L, 0L)],
            first.Results.Select(r => (r.BaseOffset, r.LastOffset)));
        Assert.All(first.Results, r => Assert.Equal(BatchCommitStatus.Appended, r.Status));

        var second = await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 2, 5), Batch(t, 0, 1)));
        Assert.Equal([(1L, 5L), (7L, 7L)], second.Results.Select(r => (r.BaseOffset, r.LastOffset)));
        Assert.Equal(8, (await f.Catalog.GetPartitionAsync(new(t, 0)))!.Value.HighWatermark);
        Assert.Equal(2, (await f.Catalog.GetPartitionAsync(new(t, 1)))!.Value.HighWatermark);
        Assert.Equal(6, (await f.Catalog.GetPartitionAsync(new(t, 2)))!.Value.HighWatermark);
    }

    [Fact]
    public async Task A_batch_for_an_unknown_partition_is_refused_alone()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("one", 1);
        var result = await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 5, 1), Batch(t, 0, 2), Batch(Uuid.NewRandom(), 0, 1)));
        Assert.Equal(
            [BatchCommitStatus.UnknownTopicOrPartition, BatchCommitStatus.Appended, BatchCommitStatus.UnknownTopicOrPartition],
            result.Results.Select(r => r.Status));
        Assert.Equal(2, (await f.Catalog.GetPartitionAsync(new(t, 0)))!.Value.HighWatermark);
        await Assert.ThrowsAsync<TopicExistsException>(() => f.Catalog.CreateTopicAsync("one", 1));
    }

    [Fact]
    public async Task Concurrent_commits_to_overlapping_partitions_never_interleave_nor_duplicate_offsets()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var a = await f.Catalog.CreateTopicAsync("a", 3);
        var b = await f.Catalog.CreateTopicAsync("b", 2);
        TopicIdPartition[] all = [new(a, 0), new(a, 1), new(a, 2), new(b, 0), new(b, 1)];
        var committed = new System.Collections.Concurrent.ConcurrentBag<(TopicIdPartition Partition, long Base, long Last, int Records, string Key)>();

        // Each task commits over its own connections (the data source's pool), in different partition
        // orders, so the row locks are contended in every combination.
        await Task.WhenAll(Enumerable.Range(0, 6).Select(task => Task.Run(async () =>
        {
            var random = new Random(task);
            for (var i = 0; i < 25; i++)
            {
                var batches = Enumerable.Range(0, random.Next(1, 7))
                    .Select(_ => all[random.Next(all.Length)])
                    .Select(p => Batch(p.TopicId, p.Partition, random.Next(1, 20)))
                    .ToArray();
                var commit = Object(batches);
                var result = await f.Catalog.CommitObjectAsync(f.Lease, commit);
                for (var j = 0; j < batches.Length; j++)
                {
                    Assert.Equal(BatchCommitStatus.Appended, result.Results[j].Status);
                    Assert.Equal(batches[j].RecordCount, result.Results[j].LastOffset - result.Results[j].BaseOffset + 1);
                    committed.Add((new(batches[j].TopicId, batches[j].Partition), result.Results[j].BaseOffset, result.Results[j].LastOffset, batches[j].RecordCount, commit.ObjectKey));
                }
            }
        })));

        foreach (var p in all)
        {
            var mine = committed.Where(c => c.Partition == p).OrderBy(c => c.Base).ToList();
            var state = (await f.Catalog.GetPartitionAsync(p))!.Value;
            Assert.Equal(mine.Sum(c => (long)c.Records), state.HighWatermark);
            var next = 0L;
            foreach (var c in mine)
            {
                Assert.Equal(next, c.Base);
                next = c.Last + 1;
            }

            // The catalog's rows say the same: contiguous from 0, each in the object its commit named.
            var stored = (await f.Catalog.FindBatchesAsync(p, 0, maxBatches: 10_000))!.Batches;
            Assert.Equal(mine.Select(c => (c.Base, c.Last, c.Key)), stored.Select(s => (s.BaseOffset, s.LastOffset, s.ObjectKey)));
        }
    }

    [Fact]
    public async Task Committing_the_same_object_again_returns_the_first_outcome_and_assigns_nothing()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("retry", 2);
        await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 0, 10)));
        var commit = Object(Batch(t, 0, 3), Batch(t, 1, 4), Batch(t, 0, 2, pid: 7, epoch: 0, seq: 0));
        var first = await f.Catalog.CommitObjectAsync(f.Lease, commit);
        var again = await f.Catalog.CommitObjectAsync(f.Lease, commit);
        Assert.True(again.AlreadyCommitted);
        Assert.Equal(first.Results, again.Results);
        Assert.Equal(15, (await f.Catalog.GetPartitionAsync(new(t, 0)))!.Value.HighWatermark);
        Assert.Equal(4, (await f.Catalog.GetPartitionAsync(new(t, 1)))!.Value.HighWatermark);

        // Several brokers' retries at once: one commit lands, all see its offsets.
        var racing = Object(Batch(t, 1, 6));
        var outcomes = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => f.Catalog.CommitObjectAsync(f.Lease, racing))));
        Assert.Single(outcomes, o => !o.AlreadyCommitted);
        Assert.All(outcomes, o => Assert.Equal((4L, 9L), (o.Results[0].BaseOffset, o.Results[0].LastOffset)));
        Assert.Equal(10, (await f.Catalog.GetPartitionAsync(new(t, 1)))!.Value.HighWatermark);
    }

    [Fact]
    public async Task Idempotent_producers_get_duplicates_their_original_offsets_and_gaps_and_fenced_epochs_refused()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("idem", 1);
        const long pid = 4000;
        async Task<BatchCommitResult[]> Commit(params BatchToCommit[] batches) =>
            [.. (await f.Catalog.CommitObjectAsync(f.Lease, Object(batches))).Results];

        // Another producer's records in between, so the offsets are not the sequences.
        Assert.Equal((0L, 1L), Pair((await Commit(Batch(t, 0, 2)))[0]));
        var r = await Commit(Batch(t, 0, 3, pid: pid, epoch: 2, seq: 0), Batch(t, 0, 2, pid: pid, epoch: 2, seq: 3), Batch(t, 0, 3, pid: pid, epoch: 2, seq: 0));
        Assert.Equal((BatchCommitStatus.Appended, 2L, 4L), Full(r[0]));
        Assert.Equal((BatchCommitStatus.Appended, 5L, 6L), Full(r[1]));
        Assert.Equal((BatchCommitStatus.Duplicate, 2L, 4L), Full(r[2])); // a duplicate within one object

        // A retry in a later object, a gap, a sequence already past, a fenced epoch.
        r = await Commit(
            Batch(t, 0, 2, pid: pid, epoch: 2, seq: 3),
            Batch(t, 0, 1, pid: pid, epoch: 2, seq: 9),
            Batch(t, 0, 1, pid: pid, epoch: 2, seq: 1),
            Batch(t, 0, 1, pid: pid, epoch: 1, seq: 5),
            Batch(t, 0, 1, pid: pid, epoch: 2, seq: 5));
        Assert.Equal((BatchCommitStatus.Duplicate, 5L, 6L), Full(r[0]));
        Assert.Equal(BatchCommitStatus.OutOfOrderSequence, r[1].Status);
        Assert.Equal(BatchCommitStatus.OutOfOrderSequence, r[2].Status);
        Assert.Equal(BatchCommitStatus.InvalidProducerEpoch, r[3].Status);
        Assert.Equal((BatchCommitStatus.Appended, 7L, 7L), Full(r[4]));
        Assert.Equal(-1, r[1].BaseOffset);

        // A new epoch starts at sequence 0; after it, the old epoch is fenced and its batches forgotten.
        r = await Commit(Batch(t, 0, 1, pid: pid, epoch: 3, seq: 6), Batch(t, 0, 1, pid: pid, epoch: 3, seq: 0), Batch(t, 0, 3, pid: pid, epoch: 2, seq: 0));
        Assert.Equal(BatchCommitStatus.OutOfOrderSequence, r[0].Status);
        Assert.Equal((BatchCommitStatus.Appended, 8L, 8L), Full(r[1]));
        Assert.Equal(BatchCommitStatus.InvalidProducerEpoch, r[2].Status);

        // Only the last five batches are remembered: the first of six is neither a duplicate nor next.
        var six = Enumerable.Range(1, 6).Select(i => Batch(t, 0, 1, pid: pid, epoch: 3, seq: i)).ToArray();
        r = await Commit(six);
        Assert.Equal(Enumerable.Range(9, 6).Select(o => (long)o), r.Select(x => x.BaseOffset));
        r = await Commit(Batch(t, 0, 1, pid: pid, epoch: 3, seq: 2), Batch(t, 0, 1, pid: pid, epoch: 3, seq: 1));
        Assert.Equal((BatchCommitStatus.Duplicate, 10L, 10L), Full(r[0]));
        Assert.Equal(BatchCommitStatus.OutOfOrderSequence, r[1].Status);
        Assert.Equal(15, (await f.Catalog.GetPartitionAsync(new(t, 0)))!.Value.HighWatermark);

        // A producer unknown here may start at any sequence (Kafka's rule: its state may have been removed).
        r = await Commit(Batch(t, 0, 2, pid: pid + 1, epoch: 0, seq: 42), Batch(t, 0, 1, pid: pid + 1, epoch: 0, seq: 44));
        Assert.Equal([(15L, 16L), (17L, 17L)], r.Select(Pair));
    }

    [Fact]
    public async Task Sequences_wrap_from_int_max_to_zero()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("wrap", 1);
        var r = (await f.Catalog.CommitObjectAsync(f.Lease, Object(
            Batch(t, 0, 3, pid: 9, epoch: 0, seq: int.MaxValue - 1),
            Batch(t, 0, 1, pid: 9, epoch: 0, seq: 1),
            Batch(t, 0, 3, pid: 9, epoch: 0, seq: int.MaxValue - 1)))).Results;
        Assert.Equal(
            [(BatchCommitStatus.Appended, 0L, 2L), (BatchCommitStatus.Appended, 3L, 3L), (BatchCommitStatus.Duplicate, 0L, 2L)],
            r.Select(Full));
    }

    [Fact]
    public async Task Lookup_finds_the_batch_holding_an_offset_and_those_after_it()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("fetch", 2);
        var o1 = Object(Batch(t, 0, 5, position: 0), Batch(t, 1, 1, position: 105), Batch(t, 0, 3, position: 206, pid: 3, epoch: 1, seq: 0));
        var o2 = Object(Batch(t, 0, 2, position: 0));
        await f.Catalog.CommitObjectAsync(f.Lease, o1);
        await f.Catalog.CommitObjectAsync(f.Lease, o2);

        var found = (await f.Catalog.FindBatchesAsync(new(t, 0), 6))!;
        Assert.Equal(new PartitionState(10, 0, 0), found.State);
        Assert.Equal(
            [new StoredBatch(5, 7, o1.ObjectKey, 206, 103, 1_700_000_000_003, 0, 3, 1, 0), new StoredBatch(8, 9, o2.ObjectKey, 0, 102, 1_700_000_000_002, 0, -1, -1, -1)],
            found.Batches);
        Assert.Equal([0L], (await f.Catalog.FindBatchesAsync(new(t, 0), 0, maxBatches: 1))!.Batches.Select(b => b.BaseOffset));
        Assert.Equal([0L, 5L, 8L], (await f.Catalog.FindBatchesAsync(new(t, 0), 4))!.Batches.Select(b => b.BaseOffset));
        Assert.Empty((await f.Catalog.FindBatchesAsync(new(t, 0), 10))!.Batches);
        Assert.Equal([(0L, 105L)], (await f.Catalog.FindBatchesAsync(new(t, 1), 0))!.Batches.Select(b => (b.BaseOffset, b.BytePosition)));
        Assert.Null(await f.Catalog.FindBatchesAsync(new(t, 2), 0));

        // Below the log start offset nothing is served (retention and DeleteRecords will move it).
        await using (var move = f.Catalog.DataSource.CreateCommand("UPDATE moldau_partitions SET log_start_offset = 6 WHERE partition = 0"))
        {
            await move.ExecuteNonQueryAsync();
        }

        Assert.Equal([5L, 8L], (await f.Catalog.FindBatchesAsync(new(t, 0), 0))!.Batches.Select(b => b.BaseOffset));
    }

    [Fact]
    public async Task A_commit_notifies_listeners_of_the_partitions_it_advanced()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("notify", 3);
        var received = System.Threading.Channels.Channel.CreateUnbounded<HighWatermarkAdvanced>();
        await using var listener = new CommitListener(f.Catalog.DataSource, list =>
        {
            foreach (var x in list)
            {
                received.Writer.TryWrite(x);
            }
        }, () => { });
        await listener.Listening;

        await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 2, 4), Batch(t, 0, 1), Batch(t, 2, 1)));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var got = new List<HighWatermarkAdvanced>
        {
            await received.Reader.ReadAsync(cts.Token),
            await received.Reader.ReadAsync(cts.Token),
        };
        Assert.Equal(
            [new HighWatermarkAdvanced(new(t, 0), 1), new HighWatermarkAdvanced(new(t, 2), 5)],
            got.OrderBy(g => g.Partition.Partition));

        // A commit that advanced nothing (a duplicate) announces nothing; the next one is the next message.
        await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 1, 1, pid: 1, epoch: 0, seq: 0)));
        await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 1, 1, pid: 1, epoch: 0, seq: 0)));
        await f.Catalog.CommitObjectAsync(f.Lease, Object(Batch(t, 0, 2)));
        Assert.Equal(new HighWatermarkAdvanced(new(t, 1), 1), await received.Reader.ReadAsync(cts.Token));
        Assert.Equal(new HighWatermarkAdvanced(new(t, 0), 3), await received.Reader.ReadAsync(cts.Token));
    }

    [Fact]
    public void Notify_payloads_stay_under_the_limit_and_read_back()
    {
        var topic = Uuid.NewRandom();
        var many = Enumerable.Range(0, 1000).Select(p => (new TopicIdPartition(topic, p), (long)p * 1_000_003)).ToList();
        var payloads = ClusterCatalog.NotifyPayloads(many).ToList();
        Assert.True(payloads.Count > 1);
        Assert.All(payloads, p => Assert.True(p.Length < 8000));
        Assert.Equal(many.Select(m => new HighWatermarkAdvanced(m.Item1, m.Item2)), payloads.SelectMany(CommitListener.Parse));
    }

    [Fact]
    public void Topic_ids_keep_their_bytes_in_postgres_form()
    {
        var id = Uuid.NewRandom();
        Assert.Equal(id, ClusterCatalog.FromGuid(ClusterCatalog.ToGuid(id)));
        Span<byte> b = stackalloc byte[16];
        id.WriteTo(b);
        Assert.Equal(Convert.ToHexString(b).ToLowerInvariant(), ClusterCatalog.ToGuid(id).ToString("N"));
    }

    private static (long, long) Pair(BatchCommitResult r) => (r.BaseOffset, r.LastOffset);

    private static (BatchCommitStatus, long, long) Full(BatchCommitResult r) => (r.Status, r.BaseOffset, r.LastOffset);
}
