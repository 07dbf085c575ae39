using Moldau.Cluster.ObjectStore;

namespace Moldau.Cluster.Tests.ObjectStore;

public sealed class BatchObjectWriterTests
{
    [Fact]
    public void BatchesLieEndToEndAtTheReturnedPositions()
    {
        using var writer = new BatchObjectWriter(initialCapacity: 4);
        Assert.Equal(new BatchLocation(0, 3), writer.Add([1, 2, 3]));
        Assert.Equal(new BatchLocation(3, 1), writer.Add([4]));
        Assert.Equal(new BatchLocation(4, 5), writer.Add([5, 6, 7, 8, 9])); // grows past 4 bytes
        Assert.Equal(9, writer.Length);
        Assert.Equal(3, writer.BatchCount);
        Assert.Equal(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9 }, writer.Content.ToArray());

        writer.Reset();
        Assert.Equal(0, writer.Length);
        Assert.Empty(writer.Locations);
        Assert.Equal(new BatchLocation(0, 2), writer.Add([10, 11]));
        Assert.Equal(new byte[] { 10, 11 }, writer.Content.ToArray());
    }

    [Fact]
    public async Task EmptyBatchesAndEmptyUploadsAreRefused()
    {
        using var writer = new BatchObjectWriter();
        Assert.Throws<ArgumentException>(() => writer.Add([]));
        await Assert.ThrowsAsync<InvalidOperationException>(() => writer.UploadAsync(null!, "k"));
    }
}
