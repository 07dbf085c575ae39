using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;
using Moldau.Protocol;

namespace Moldau.Cluster.Tests.Catalog;

/// <summary>Topic configs and DeleteRecords against a real PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed class TopicConfigAndDeleteRecordsTests(PostgresServer server)
{
    private static BatchToCommit Batch(Uuid topic, int partition, int records) =>
        new(topic, partition, 0, 100, records, 1_700_000_000_000);

    [Fact]
    public async Task Configs_are_set_replaced_removed_and_checked()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("configured", 1);
        Assert.Empty(await f.Catalog.GetTopicConfigsAsync(t));

        await f.Catalog.SetTopicConfigsAsync(t, new Dictionary<string, string?> { ["retention.ms"] = "60000", ["cleanup.policy"] = "delete", ["retention.bytes"] = "-1" });
        await f.Catalog.SetTopicConfigsAsync(t, new Dictionary<string, string?> { ["retention.ms"] = "120000", ["retention.bytes"] = null });
        Assert.Equal(
            new Dictionary<string, string> { ["cleanup.policy"] = "delete", ["retention.ms"] = "120000" },
            await f.Catalog.GetTopicConfigsAsync(t));

        await Assert.ThrowsAsync<ArgumentException>(() => f.Catalog.SetTopicConfigsAsync(t, new Dictionary<string, string?> { ["retention.ms"] = "soon" }));
        await Assert.ThrowsAsync<ArgumentException>(() => f.Catalog.SetTopicConfigsAsync(t, new Dictionary<string, string?> { ["retention.bytes"] = "-2" }));
        await Assert.ThrowsAsync<KeyNotFoundException>(() => f.Catalog.SetTopicConfigsAsync(Uuid.NewRandom(), new Dictionary<string, string?> { ["retention.ms"] = "1" }));
        Assert.Equal("120000", (await f.Catalog.GetTopicConfigsAsync(t))["retention.ms"]);
    }

    [Fact]
    public async Task DeleteRecords_moves_the_log_start_drops_whole_batches_below_it_and_never_passes_the_high_watermark()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("trim", 2);
        var tp = new TopicIdPartition(t, 0);
        await f.Catalog.CommitObjectAsync(f.Lease, new ObjectCommit("o/1", 300, [Batch(t, 0, 5), Batch(t, 0, 5), Batch(t, 0, 5)]));

        Assert.Equal(new DeleteRecordsResult(DeleteRecordsStatus.Ok, 7), await f.Catalog.DeleteRecordsAsync(tp, 7));
        var found = (await f.Catalog.FindBatchesAsync(tp, 0))!;
        Assert.Equal(new PartitionState(15, 7, 0), found.State);
        Assert.Equal([(5L, 9L), (10L, 14L)], found.Batches.Select(b => (b.BaseOffset, b.LastOffset))); // 5-9 holds offset 7: kept

        // Never back; never past the high watermark; -1 means the high watermark.
        Assert.Equal(new DeleteRecordsResult(DeleteRecordsStatus.Ok, 7), await f.Catalog.DeleteRecordsAsync(tp, 3));
        Assert.Equal(new DeleteRecordsResult(DeleteRecordsStatus.OffsetOutOfRange, 7), await f.Catalog.DeleteRecordsAsync(tp, 16));
        Assert.Equal(new DeleteRecordsResult(DeleteRecordsStatus.OffsetOutOfRange, 7), await f.Catalog.DeleteRecordsAsync(tp, -5));
        Assert.Equal(new DeleteRecordsResult(DeleteRecordsStatus.Ok, 15), await f.Catalog.DeleteRecordsAsync(tp, -1));
        found = (await f.Catalog.FindBatchesAsync(tp, 0))!;
        Assert.Equal(new PartitionState(15, 15, 0), found.State);
        Assert.Empty(found.Batches);

        Assert.Equal(DeleteRecordsStatus.UnknownTopicOrPartition, (await f.Catalog.DeleteRecordsAsync(new(t, 7), 0)).Status);

        // Appends continue at the high watermark; the other partition was untouched.
        var next = await f.Catalog.CommitObjectAsync(f.Lease, new ObjectCommit("o/2", 100, [Batch(t, 0, 2)]));
        Assert.Equal((15L, 16L, 15L), (next.Results[0].BaseOffset, next.Results[0].LastOffset, next.Results[0].LogStartOffset));
        Assert.Equal(new PartitionState(0, 0, 0), await f.Catalog.GetPartitionAsync(new(t, 1)));
    }

    [Fact]
    public async Task Moving_the_log_start_past_a_producers_last_batch_forgets_the_producer_as_kafka_does()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("producers", 1);
        var tp = new TopicIdPartition(t, 0);
        BatchToCommit Idempotent(long pid, int seq) => new(t, 0, 0, 100, 2, 1_700_000_000_000, pid, 0, seq);

        // Producer 7 writes offsets 0-1, producer 8 offsets 2-3.
        await f.Catalog.CommitObjectAsync(f.Lease, new ObjectCommit("p/1", 200, [Idempotent(7, 0), Idempotent(8, 0)]));
        await f.Catalog.DeleteRecordsAsync(tp, 2);

        // 7's state is gone: a batch at any sequence is taken. 8's stays: a gap is still refused.
        var after = await f.Catalog.CommitObjectAsync(f.Lease, new ObjectCommit("p/2", 200, [Idempotent(7, 40), Idempotent(8, 5)]));
        Assert.Equal([BatchCommitStatus.Appended, BatchCommitStatus.OutOfOrderSequence], after.Results.Select(r => r.Status));
    }
}
