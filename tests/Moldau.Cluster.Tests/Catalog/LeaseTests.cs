using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;

namespace Moldau.Cluster.Tests.Catalog;

/// <summary>Broker registration and leases: PostgreSQL's clock decides expiry; an expired lease is fenced.</summary>
[Collection(PostgresCollection.Name)]
public sealed class LeaseTests(PostgresServer server)
{
    [Fact]
    public async Task Registered_brokers_are_listed_with_what_they_registered()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var two = CatalogFixture.Registration(2, rack: "az-b");
        var lease = await f.Catalog.RegisterBrokerAsync(two, TimeSpan.FromMinutes(5));
        Assert.True(lease.BrokerEpoch > f.Lease.BrokerEpoch);

        var live = await f.Catalog.ListLiveBrokersAsync();
        Assert.Equal([1, 2], live.Select(b => b.Registration.BrokerId));
        Assert.Equal("az-b", live[1].Registration.Rack);
        Assert.Null(live[0].Registration.Rack);
        Assert.Equal(two.Incarnation, live[1].Registration.Incarnation);
        Assert.Equal(two.Listeners, live[1].Registration.Listeners);
        Assert.Equal(lease.BrokerEpoch, live[1].BrokerEpoch);

        // The same incarnation registering again (a retry) keeps its epoch; another is refused.
        Assert.Equal(lease.BrokerEpoch, (await f.Catalog.RegisterBrokerAsync(two, TimeSpan.FromMinutes(5))).BrokerEpoch);
        await Assert.ThrowsAsync<DuplicateBrokerRegistrationException>(
            () => f.Catalog.RegisterBrokerAsync(CatalogFixture.Registration(2), TimeSpan.FromMinutes(5)));

        // A clean shutdown ends the lease at once.
        await f.Catalog.ReleaseLeaseAsync(lease);
        Assert.Equal([1], (await f.Catalog.ListLiveBrokersAsync()).Select(b => b.Registration.BrokerId));
    }

    [Fact]
    public async Task An_expired_lease_is_fenced_for_renewal_and_commits_until_the_broker_registers_anew()
    {
        await using var f = await CatalogFixture.CreateAsync(server);
        var t = await f.Catalog.CreateTopicAsync("fenced", 1);
        var incarnation = Guid.NewGuid();
        var lease = await f.Catalog.RegisterBrokerAsync(CatalogFixture.Registration(3, incarnation), TimeSpan.FromMilliseconds(300));
        lease = await f.Catalog.RenewLeaseAsync(lease, TimeSpan.FromMilliseconds(300));

        // Wait on PostgreSQL's clock, the one leases are judged by, until the lease has ended.
        await using (var wait = f.Catalog.DataSource.CreateCommand(
            """
            DO $$ BEGIN
                WHILE (SELECT lease_expires_at > clock_timestamp() FROM moldau_brokers WHERE broker_id = 3) LOOP
                    PERFORM pg_sleep(0.02);
                END LOOP;
            END $$
            """))
        {
            await wait.ExecuteNonQueryAsync();
        }

        await using (var check = f.Catalog.DataSource.CreateCommand("SELECT lease_expires_at <= clock_timestamp() FROM moldau_brokers WHERE broker_id = 3"))
        {
            Assert.True((bool)(await check.ExecuteScalarAsync())!);
        }

        Assert.DoesNotContain(3, (await f.Catalog.ListLiveBrokersAsync()).Select(b => b.Registration.BrokerId));
        await Assert.ThrowsAsync<BrokerFencedException>(() => f.Catalog.RenewLeaseAsync(lease, TimeSpan.FromMinutes(5)));
        var refused = new ObjectCommit("objects/late", 100, [new BatchToCommit(t, 0, 0, 100, 1, 0)]);
        await Assert.ThrowsAsync<BrokerFencedException>(() => f.Catalog.CommitObjectAsync(lease, refused));
        Assert.Equal(0, (await f.Catalog.GetPartitionAsync(new(t, 0)))!.Value.HighWatermark);

        // Registering again, even as the same incarnation, makes a new epoch: the old lease stays fenced.
        var again = await f.Catalog.RegisterBrokerAsync(CatalogFixture.Registration(3, incarnation), TimeSpan.FromMinutes(5));
        Assert.True(again.BrokerEpoch > lease.BrokerEpoch);
        await Assert.ThrowsAsync<BrokerFencedException>(() => f.Catalog.CommitObjectAsync(lease, refused));
        await Assert.ThrowsAsync<BrokerFencedException>(() => f.Catalog.RenewLeaseAsync(lease, TimeSpan.FromMinutes(5)));
        var landed = await f.Catalog.CommitObjectAsync(again, refused);
        Assert.Equal((0L, 0L), (landed.Results[0].BaseOffset, landed.Results[0].LastOffset));

        // Another broker may take an expired id.
        await f.Catalog.ReleaseLeaseAsync(again);
        var taken = await f.Catalog.RegisterBrokerAsync(CatalogFixture.Registration(3), TimeSpan.FromMinutes(5));
        Assert.True(taken.BrokerEpoch > again.BrokerEpoch);
    }

    [Fact]
    public void Options_read_the_connection_and_lease_keys()
    {
        Assert.Null(ClusterCatalogOptions.FromProperties(new Dictionary<string, string>()));
        var o = ClusterCatalogOptions.FromProperties(new Dictionary<string, string>
        {
            ["moldau.cluster.postgres.connection"] = "Host=db;Database=moldau;Username=moldau",
        })!;
        Assert.Equal((TimeSpan.FromSeconds(9), TimeSpan.FromSeconds(2)), (o.LeaseDuration, o.RenewInterval));
        o = ClusterCatalogOptions.FromProperties(new Dictionary<string, string>
        {
            ["moldau.cluster.postgres.connection"] = "Host=db",
            ["broker.session.timeout.ms"] = "4000",
            ["broker.heartbeat.interval.ms"] = "500",
        })!;
        Assert.Equal((TimeSpan.FromSeconds(4), TimeSpan.FromMilliseconds(500)), (o.LeaseDuration, o.RenewInterval));
        Assert.Throws<ArgumentException>(() => ClusterCatalogOptions.FromProperties(new Dictionary<string, string>
        {
            ["moldau.cluster.postgres.connection"] = "Host=db",
            ["broker.session.timeout.ms"] = "1000",
            ["broker.heartbeat.interval.ms"] = "1000",
        }));
        Assert.Throws<ArgumentException>(() => ClusterCatalogOptions.FromProperties(new Dictionary<string, string>
        {
            ["moldau.cluster.postgres.connection"] = "Nonsense=1",
        }));
    }
}
