using Moldau.Cluster.ObjectStore;

namespace Moldau.Cluster.Tests.ObjectStore;

public sealed class ObjectKeysTests
{
    [Fact]
    public void ProduceKeyHasTheClusterTheUtcDateAndAUlid()
    {
        var at = new DateTimeOffset(2026, 12, 6, 23, 30, 0, 123, TimeSpan.FromHours(-2)); // 2026-12-07 01:30 UTC
        var random = new byte[] { 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x01 };
        var key = ObjectKeys.ProduceKey("moldau-1", at, random);

        // Golden (computed apart, in Python): 1796607000123 ms = 0x1A24E1F3E3B, then the 80 random bits,
        // as 26 Crockford base-32 digits.
        Assert.Equal("moldau-1/2026/12/07/01M971YFHVZW00000000000001", key);
        Assert.StartsWith(ObjectKeys.DayPrefix("moldau-1", at), key);
        Assert.StartsWith(ObjectKeys.ClusterPrefix("moldau-1"), key);
        Assert.True(ObjectKeys.TryGetCreated(key, out var created));
        Assert.Equal(at.ToUnixTimeMilliseconds(), created.ToUnixTimeMilliseconds());
    }

    [Fact]
    public void KeysSortByTimeAndNeverRepeat()
    {
        var start = DateTimeOffset.UtcNow;
        var keys = Enumerable.Range(0, 1000).Select(i => ObjectKeys.NewProduceKey("c", start.AddMilliseconds(i * 7))).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.Equal(keys, keys.Order(StringComparer.Ordinal).ToList());

        var sameMillisecond = Enumerable.Range(0, 1000).Select(_ => ObjectKeys.NewProduceKey("c", start)).ToList();
        Assert.Equal(1000, sameMillisecond.Distinct().Count());
    }

    [Theory]
    [InlineData("c/2026/01/01/short")]
    [InlineData("c/2026/01/01/01M971YFHVZW0000000000000I")] // I is not Crockford base 32
    [InlineData("c/2026/01/01/81M971YFHVZW00000000000001")] // first digit above 7: more than 128 bits
    [InlineData("no-slash")]
    public void ForeignKeysAreNotProduceKeys(string key)
    {
        Assert.False(ObjectKeys.TryGetCreated(key, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/b")]
    [InlineData("spa ce")]
    public void ClusterNamesThatWouldBreakThePathAreRefused(string cluster)
    {
        Assert.Throws<ArgumentException>(() => ObjectKeys.NewProduceKey(cluster, DateTimeOffset.UtcNow));
    }
}
