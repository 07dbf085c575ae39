using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;

namespace Moldau.Cluster.Tests.Catalog;

/// <summary>What a broker in cluster mode asks the catalog besides commits (schema version 2), against a real PostgreSQL.</summary>
[Collection(PostgresCollection.Name)]
public sealed class BrokerCatalogTests(PostgresServer server)
{
    [Fact]
    public async Task Every_broker_gets_the_cluster_id_the_first_one_stored()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        Assert.Equal("first-id", await f.Catalog.ClusterIdAsync("first-id"));
        Assert.Equal("first-id", await f.Catalog.ClusterIdAsync("second-id"));
    }

    [Fact]
    public async Task The_membership_version_moves_only_when_the_members_change()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        await f.Catalog.ClusterIdAsync("c");
        var v1 = await f.Catalog.MembershipVersionAsync("1,2,3");
        Assert.Equal(v1, await f.Catalog.MembershipVersionAsync("1,2,3"));
        var v2 = await f.Catalog.MembershipVersionAsync("1,3");
        Assert.Equal(v1 + 1, v2);
        Assert.Equal(v2 + 1, await f.Catalog.MembershipVersionAsync("1,2,3"));
    }

    [Fact]
    public async Task Producer_id_blocks_never_overlap_across_concurrent_callers()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var firsts = await Task.WhenAll(Enumerable.Range(0, 20).Select(_ => f.Catalog.AllocateProducerIdBlockAsync(1000)));
        Assert.Equal(20, firsts.Distinct().Count());
        Assert.All(firsts, first => Assert.Equal(0, first % 1000));
    }

    [Fact]
    public async Task Topics_are_listed_grown_and_deleted_with_their_batches()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var id = await f.Catalog.CreateTopicAsync("grow", 2);
        Assert.Contains(await f.Catalog.ListTopicsAsync(), t => t.TopicId == id && t.Name == "grow" && t.PartitionCount == 2);

        Assert.True(await f.Catalog.AddPartitionsAsync(id, 5));
        Assert.False(await f.Catalog.AddPartitionsAsync(id, 4)); // never fewer
        Assert.Equal(5, (await f.Catalog.GetTopicAsync("grow"))!.PartitionCount);
        Assert.Equal(0, (await f.Catalog.GetPartitionAsync(new TopicIdPartition(id, 4)))!.Value.HighWatermark);

        await f.Catalog.CommitObjectAsync(f.Lease, new ObjectCommit("objects/grow-1", 100, [new BatchToCommit(id, 4, 0, 100, 3, 1)]));
        Assert.Contains((await f.Catalog.ListPartitionStatesAsync()), s => s.Partition == new TopicIdPartition(id, 4) && s.State.HighWatermark == 3);

        Assert.True(await f.Catalog.DeleteTopicAsync(id));
        Assert.False(await f.Catalog.DeleteTopicAsync(id));
        Assert.DoesNotContain(await f.Catalog.ListTopicsAsync(), t => t.TopicId == id);
        Assert.Null(await f.Catalog.FindBatchesAsync(new TopicIdPartition(id, 4), 0));
        await using var count = f.Catalog.DataSource.CreateCommand("SELECT count(*) FROM moldau_batches");
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync())!);
    }
}
