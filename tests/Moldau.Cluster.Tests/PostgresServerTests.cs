using Moldau.Cluster.Tests.Infrastructure;
using Npgsql;

namespace Moldau.Cluster.Tests;

/// <summary>The test PostgreSQL server itself: it answers, and each test's database is its own.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresServerTests(PostgresServer server)
{
    [Fact]
    public async Task Each_test_database_is_separate_and_empty()
    {
        await using var first = await server.CreateDatabaseAsync();
        await using var second = await server.CreateDatabaseAsync();
        await using (var c = new NpgsqlConnection(first.ConnectionString))
        {
            await c.OpenAsync();
            await using var create = new NpgsqlCommand("CREATE TABLE t (x int)", c);
            await create.ExecuteNonQueryAsync();
        }

        await using var other = new NpgsqlConnection(second.ConnectionString);
        await other.OpenAsync();
        await using var count = new NpgsqlCommand("SELECT count(*) FROM pg_tables WHERE tablename = 't'", other);
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync())!);
        await using var user = new NpgsqlCommand("SELECT current_user", other);
        Assert.Equal("moldau", (string)(await user.ExecuteScalarAsync())!);
    }
}
