using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>Which requests the network layer may dispatch side by side: one-partition Produce requests, keyed by partition.</summary>
public sealed class ProduceOrderingTests
{
    private static byte[] Frame(ApiKey key, short version, IKafkaMessage body)
    {
        var spec = ApiSpecs.Find((short)key)!;
        var header = new RequestHeader { ApiKey = (short)key, ApiVersion = version, CorrelationId = 7, ClientId = "a client" };
        var headerVersion = spec.RequestHeaderVersion(version);
        var frame = new byte[header.Size(headerVersion) + body.Size(version)];
        var writer = new KafkaWriter(frame);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        return frame;
    }

    private static byte[] Produce(short version, params (string Topic, int Partition)[] targets) =>
        Frame(ApiKey.Produce, version, new ProduceRequest
        {
            TransactionalId = version >= 3 ? "tx" : null,
            Acks = 1,
            TimeoutMs = 1000,
            TopicData = [.. targets.GroupBy(t => t.Topic).Select(g => new ProduceRequest.TopicProduceData
            {
                Name = g.Key,
                PartitionData = [.. g.Select(t => new ProduceRequest.PartitionProduceData { Index = t.Partition, Records = new byte[100] })],
            })],
        });

    [Theory]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(9)]
    [InlineData(11)]
    public void OnePartitionProducesAreKeyedByTheirPartition(short version)
    {
        var a0 = ProduceOrdering.Key(Produce(version, ("orders", 0)));
        Assert.NotNull(a0);
        Assert.Equal(a0, ProduceOrdering.Key(Produce(version, ("orders", 0))));
        Assert.NotEqual(a0, ProduceOrdering.Key(Produce(version, ("orders", 1))));
        Assert.NotEqual(a0, ProduceOrdering.Key(Produce(version, ("payments", 0))));
    }

    [Fact]
    public void EverythingElseStaysInStrictOrder()
    {
        Assert.Null(ProduceOrdering.Key(Produce(9, ("orders", 0), ("orders", 1))));
        Assert.Null(ProduceOrdering.Key(Produce(9, ("orders", 0), ("payments", 0))));
        Assert.Null(ProduceOrdering.Key(Frame(ApiKey.Fetch, 12, new FetchRequest { Topics = [new() { Topic = "orders", Partitions = [new() { Partition = 0 }] }] })));
        var whole = Produce(9, ("orders", 0));
        for (var cut = 0; cut < 40; cut++)
        {
            Assert.Null(ProduceOrdering.Key(whole.AsMemory(0, cut)));
        }
    }
}
