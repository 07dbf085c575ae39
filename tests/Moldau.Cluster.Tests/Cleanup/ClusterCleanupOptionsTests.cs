using Moldau.Cluster.Cleanup;

namespace Moldau.Cluster.Tests.Cleanup;

/// <summary>Reading the clean-up job's keys from server.properties.</summary>
public sealed class ClusterCleanupOptionsTests
{
    [Fact]
    public void Defaults_when_nothing_is_set()
    {
        var o = ClusterCleanupOptions.FromProperties(new Dictionary<string, string>());
        Assert.Equal(TimeSpan.FromMinutes(1), o.Interval);
        Assert.Equal(TimeSpan.FromMinutes(5), o.DeleteGrace);
        Assert.Equal(TimeSpan.FromHours(1), o.OrphanGrace);
        Assert.Equal(TimeSpan.FromMinutes(10), o.OrphanSweepInterval);
        Assert.Equal(7L * 24 * 3600 * 1000, o.DefaultRetentionMs);
        Assert.Equal(-1, o.DefaultRetentionBytes);
        Assert.Equal("delete", o.DefaultCleanupPolicy);
    }

    [Fact]
    public void Keys_are_read_and_kafkas_retention_synonyms_apply_in_kafkas_order()
    {
        var o = ClusterCleanupOptions.FromProperties(new Dictionary<string, string>
        {
            ["moldau.cluster.cleanup.interval.ms"] = "5000",
            ["moldau.cluster.object.delete.grace.ms"] = "60000",
            ["moldau.cluster.orphan.grace.ms"] = "7200000",
            ["moldau.cluster.orphan.sweep.interval.ms"] = "30000",
            ["log.retention.hours"] = "24",
            ["log.retention.minutes"] = "90",
            ["log.retention.bytes"] = "1073741824",
            ["log.cleanup.policy"] = "compact,delete",
        });
        Assert.Equal(TimeSpan.FromSeconds(5), o.Interval);
        Assert.Equal(TimeSpan.FromMinutes(1), o.DeleteGrace);
        Assert.Equal(TimeSpan.FromHours(2), o.OrphanGrace);
        Assert.Equal(TimeSpan.FromSeconds(30), o.OrphanSweepInterval);
        Assert.Equal(90 * 60_000L, o.DefaultRetentionMs); // minutes win over hours, ms over both (Kafka)
        Assert.Equal(1L << 30, o.DefaultRetentionBytes);
        Assert.Equal("compact,delete", o.DefaultCleanupPolicy);

        Assert.Equal(-1, ClusterCleanupOptions.FromProperties(new Dictionary<string, string> { ["log.retention.ms"] = "-1", ["log.retention.hours"] = "1" }).DefaultRetentionMs);
        Assert.Equal(-1, ClusterCleanupOptions.FromProperties(new Dictionary<string, string> { ["log.retention.hours"] = "-1" }).DefaultRetentionMs);
    }

    [Theory]
    [InlineData("moldau.cluster.cleanup.interval.ms", "0")]
    [InlineData("moldau.cluster.orphan.grace.ms", "soon")]
    [InlineData("log.retention.ms", "-2")]
    [InlineData("log.retention.bytes", "1GB")]
    public void Malformed_values_are_refused_naming_the_key(string key, string value)
    {
        var e = Assert.Throws<ArgumentException>(() => ClusterCleanupOptions.FromProperties(new Dictionary<string, string> { [key] = value }));
        Assert.Contains(key, e.Message);
    }
}
