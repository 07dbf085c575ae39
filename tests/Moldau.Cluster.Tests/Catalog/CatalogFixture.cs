using Moldau.Cluster.Catalog;
using Moldau.Cluster.Tests.Infrastructure;

namespace Moldau.Cluster.Tests.Catalog;

/// <summary>A catalog over a fresh database, with a registered broker to commit as.</summary>
internal sealed class CatalogFixture : IAsyncDisposable
{
    private CatalogFixture(TestDatabase database, ClusterCatalog catalog, BrokerLease lease)
    {
        Database = database;
        Catalog = catalog;
        Lease = lease;
    }

    public TestDatabase Database { get; }

    public ClusterCatalog Catalog { get; }

    public BrokerLease Lease { get; }

    public static async Task<CatalogFixture> CreateAsync(PostgresServer server)
    {
        var database = await server.CreateDatabaseAsync();
        var catalog = await ClusterCatalog.OpenAsync(database.ConnectionString);
        var lease = await catalog.RegisterBrokerAsync(Registration(1), TimeSpan.FromMinutes(10));
        return new CatalogFixture(database, catalog, lease);
    }

    public static BrokerRegistration Registration(int id, Guid? incarnation = null, string? rack = null) =>
        new(id, incarnation ?? Guid.NewGuid(), rack, [new BrokerEndpoint("PLAINTEXT", "127.0.0.1", 9092 + id, "PLAINTEXT")]);

    public async ValueTask DisposeAsync()
    {
        await Catalog.DisposeAsync();
        await Database.DisposeAsync();
    }
}
