using System.Globalization;
using Npgsql;

namespace Moldau.Cluster;

/// <summary>
/// The PostgreSQL side of cluster mode's configuration, from server.properties (docs/cluster.md):
/// <c>moldau.cluster.postgres.connection</c> (an Npgsql connection string; the password may instead
/// come from PGPASSWORD or a pgpass file, as with libpq), Kafka's <c>broker.session.timeout.ms</c>
/// (the lease) and <c>broker.heartbeat.interval.ms</c> (how often a broker renews it).
/// </summary>
/// <param name="ConnectionString">The Npgsql connection string.</param>
/// <param name="LeaseDuration">How long a lease lives unless renewed.</param>
/// <param name="RenewInterval">How often a broker renews its lease.</param>
public sealed record ClusterCatalogOptions(string ConnectionString, TimeSpan LeaseDuration, TimeSpan RenewInterval)
{
    /// <summary>The key of the connection string.</summary>
    public const string ConnectionKey = "moldau.cluster.postgres.connection";

    /// <summary>The key of the lease duration (Kafka's broker session timeout).</summary>
    public const string LeaseKey = "broker.session.timeout.ms";

    /// <summary>The key of the renew interval (Kafka's broker heartbeat interval).</summary>
    public const string RenewKey = "broker.heartbeat.interval.ms";

    /// <summary>Reads the options; null when <see cref="ConnectionKey"/> is absent (cluster mode off).</summary>
    /// <exception cref="ArgumentException">A value is malformed, or the renew interval is not shorter than the lease.</exception>
    public static ClusterCatalogOptions? FromProperties(IReadOnlyDictionary<string, string> properties)
    {
        if (!properties.TryGetValue(ConnectionKey, out var connection) || string.IsNullOrWhiteSpace(connection))
        {
            return null;
        }

        try
        {
            _ = new NpgsqlConnectionStringBuilder(connection);
        }
        catch (ArgumentException e)
        {
            throw new ArgumentException($"{ConnectionKey}: not a valid connection string: {e.Message}", e);
        }

        var lease = Milliseconds(properties, LeaseKey, 9000);
        var renew = Milliseconds(properties, RenewKey, 2000);
        if (renew >= lease)
        {
            throw new ArgumentException($"{RenewKey} ({renew.TotalMilliseconds} ms) must be shorter than {LeaseKey} ({lease.TotalMilliseconds} ms)");
        }

        return new ClusterCatalogOptions(connection, lease, renew);
    }

    private static TimeSpan Milliseconds(IReadOnlyDictionary<string, string> properties, string key, int defaultMs)
    {
        if (!properties.TryGetValue(key, out var text))
        {
            return TimeSpan.FromMilliseconds(defaultMs);
        }

        return int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var ms) && ms > 0
            ? TimeSpan.FromMilliseconds(ms)
            : throw new ArgumentException($"{key}: '{text}' is not a positive number of milliseconds");
    }
}
