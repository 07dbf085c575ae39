using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;

namespace Moldau.Cluster.Tests.Catalog;

/// <summary>Consumer group persistence against a real PostgreSQL: claims, writes, fencing, reload.</summary>
[Collection(PostgresCollection.Name)]
public sealed class GroupTests(PostgresServer server)
{
    private static GroupOffset Offset(string topic, int partition, long offset, string? metadata = null, int leaderEpoch = 3) =>
        new(topic, partition, offset, leaderEpoch, metadata, 1_765_000_000_000 + offset, -1);

    [Fact]
    public async Task Offsets_and_metadata_written_by_the_coordinator_read_back_after_a_restart()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var claim = await f.Catalog.ClaimGroupAsync(f.Lease, "payments");
        Assert.Equal(1, claim.CoordinatorEpoch);
        Assert.Equal(1, claim.BrokerId);

        byte[] members = [0, 3, 1, 2, 3, 4, 5, 255];
        await f.Catalog.StoreGroupMetadataAsync(claim, members);
        await f.Catalog.CommitOffsetsAsync(claim, [Offset("orders", 0, 10, "m0"), Offset("orders", 1, 20), Offset("other", 0, 5, "", -1)]);
        await f.Catalog.CommitOffsetsAsync(claim, [Offset("orders", 0, 15, "later")]); // replaces partition 0's

        // A new catalog over the same database: what a broker sees after any broker restarted.
        await using var restarted = await ClusterCatalog.OpenAsync(f.Database.ConnectionString);
        var stored = await restarted.LoadGroupAsync("payments");
        Assert.NotNull(stored);
        Assert.Equal(1, stored.CoordinatorEpoch);
        Assert.Equal(1, stored.CoordinatorBroker);
        Assert.Equal(members, stored.Metadata);
        Assert.Equal(
            [Offset("orders", 0, 15, "later"), Offset("orders", 1, 20), Offset("other", 0, 5, "", -1)],
            stored.Offsets);
        Assert.Null(await restarted.LoadGroupAsync("nobody"));

        await f.Catalog.DeleteOffsetsAsync(claim, [("orders", 1), ("missing", 9)]);
        Assert.Equal(["orders-0", "other-0"], (await restarted.LoadGroupAsync("payments"))!.Offsets.Select(o => $"{o.Topic}-{o.Partition}"));
        await f.Catalog.StoreGroupMetadataAsync(claim, null);
        Assert.Null((await restarted.LoadGroupAsync("payments"))!.Metadata);
    }

    [Fact]
    public async Task A_second_claim_fences_every_write_of_the_first_coordinator()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var broker2 = await f.Catalog.RegisterBrokerAsync(CatalogFixture.Registration(2), TimeSpan.FromMinutes(10));
        var first = await f.Catalog.ClaimGroupAsync(f.Lease, "g");
        await f.Catalog.CommitOffsetsAsync(first, [Offset("t", 0, 100)]);
        await f.Catalog.StoreGroupMetadataAsync(first, [1]);

        var second = await f.Catalog.ClaimGroupAsync(broker2, "g");
        Assert.Equal(2, second.CoordinatorEpoch);

        // The paused former coordinator wakes up and writes: every kind of write is refused.
        var fenced = await Assert.ThrowsAsync<GroupCoordinatorFencedException>(() => f.Catalog.CommitOffsetsAsync(first, [Offset("t", 0, 50), Offset("t", 1, 7)]));
        Assert.Equal(2, fenced.CurrentEpoch);
        Assert.Equal(first, fenced.Claim);
        Assert.Contains("fenced", fenced.Message);
        await Assert.ThrowsAsync<GroupCoordinatorFencedException>(() => f.Catalog.StoreGroupMetadataAsync(first, [9, 9]));
        await Assert.ThrowsAsync<GroupCoordinatorFencedException>(() => f.Catalog.DeleteOffsetsAsync(first, [("t", 0)]));
        await Assert.ThrowsAsync<GroupCoordinatorFencedException>(() => f.Catalog.DeleteGroupAsync(first));

        var state = (await f.Catalog.LoadGroupAsync("g"))!;
        Assert.Equal(2, state.CoordinatorBroker);
        Assert.Equal([Offset("t", 0, 100)], state.Offsets);
        Assert.Equal([1], state.Metadata);

        // The new coordinator writes freely; deleting the group keeps its epoch, so the next claim is 3.
        await f.Catalog.CommitOffsetsAsync(second, [Offset("t", 0, 120)]);
        await f.Catalog.DeleteGroupAsync(second);
        state = (await f.Catalog.LoadGroupAsync("g"))!;
        Assert.Empty(state.Offsets);
        Assert.Null(state.Metadata);
        Assert.Equal(3, (await f.Catalog.ClaimGroupAsync(f.Lease, "g")).CoordinatorEpoch);
    }

    [Fact]
    public async Task A_write_for_a_group_never_claimed_is_refused_and_a_fenced_broker_can_not_claim()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var fenced = await Assert.ThrowsAsync<GroupCoordinatorFencedException>(
            () => f.Catalog.CommitOffsetsAsync(new GroupCoordinatorClaim("ghost", 1, 1), [Offset("t", 0, 1)]));
        Assert.Null(fenced.CurrentEpoch);
        Assert.Null(await f.Catalog.LoadGroupAsync("ghost"));

        await f.Catalog.ReleaseLeaseAsync(f.Lease);
        await Assert.ThrowsAsync<BrokerFencedException>(() => f.Catalog.ClaimGroupAsync(f.Lease, "g"));
        Assert.Null(await f.Catalog.LoadGroupAsync("g"));
    }

    [Fact]
    public async Task Writes_racing_a_claim_either_land_before_it_and_are_loaded_or_are_refused()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var broker2 = await f.Catalog.RegisterBrokerAsync(CatalogFixture.Registration(2), TimeSpan.FromMinutes(10));
        var old = await f.Catalog.ClaimGroupAsync(f.Lease, "race");

        // The old coordinator commits offsets 1, 2, 3, ... as fast as it can while the new one claims.
        long lastAcknowledged = 0;
        var writer = Task.Run(async () =>
        {
            for (long offset = 1; ; offset++)
            {
                try
                {
                    await f.Catalog.CommitOffsetsAsync(old, [Offset("t", 0, offset), Offset("t", 1, offset)]);
                    lastAcknowledged = offset;
                }
                catch (GroupCoordinatorFencedException)
                {
                    return offset;
                }
            }
        });

        while (Volatile.Read(ref lastAcknowledged) < 20)
        {
            await Task.Delay(5);
        }

        var claim = await f.Catalog.ClaimGroupAsync(broker2, "race");
        var loaded = (await f.Catalog.LoadGroupAsync("race"))!;
        var refused = await writer;

        // Every write the old coordinator was told succeeded is in what the new one loaded, and
        // nothing after: the first refused write is the one after the last acknowledged.
        Assert.Equal(2, claim.CoordinatorEpoch);
        Assert.Equal(refused - 1, lastAcknowledged);
        Assert.All(loaded.Offsets, o => Assert.Equal(lastAcknowledged, o.Offset));
        Assert.Equal(2, loaded.Offsets.Count);
    }
}
