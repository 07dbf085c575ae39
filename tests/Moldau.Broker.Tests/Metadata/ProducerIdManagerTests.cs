using Moldau.Coordinator;

namespace Moldau.Broker.Tests.Metadata;

public sealed class ProducerIdManagerTests
{
    [Fact]
    public void IdsComeFromBlocksTakenOneAtATime()
    {
        var next = 100L;
        var blocks = 0;
        var manager = new ProducerIdManager(() =>
        {
            blocks++;
            var block = new ProducerIdBlock(next, 3);
            next = block.NextBlockFirstId;
            return block;
        });

        Assert.Equal([100L, 101, 102, 103, 104], Enumerable.Range(0, 5).Select(_ => manager.GenerateProducerId()));
        Assert.Equal(2, blocks);
    }

    [Fact]
    public void ABlockBehindTheIdsHandedOutIsRefused()
    {
        var manager = new ProducerIdManager(() => new ProducerIdBlock(0, 1));
        Assert.Equal(0, manager.GenerateProducerId());
        Assert.Throws<InvalidOperationException>(() => manager.GenerateProducerId());
    }
}
