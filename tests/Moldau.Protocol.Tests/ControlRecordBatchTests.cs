using System.Buffers.Binary;
using Moldau.Protocol.Records;

namespace Moldau.Protocol.Tests;

/// <summary>Transaction markers in Kafka's layout: control and transactional bits, one record, key and value as Kafka's ControlRecordType / EndTransactionMarker write them.</summary>
public sealed class ControlRecordBatchTests
{
    [Theory]
    [InlineData(ControlRecordType.Abort)]
    [InlineData(ControlRecordType.Commit)]
    public void AMarkerBatchHasKafkasLayout(ControlRecordType type)
    {
        var bytes = ControlRecordBatch.Build(producerId: 4242, producerEpoch: 7, coordinatorEpoch: 3, type, timestamp: 1_700_000_000_000);
        var batch = new RecordBatch(bytes);

        Assert.True(batch.IsControl);
        Assert.True(batch.IsTransactional);
        Assert.True(batch.IsCrcValid());
        Assert.Equal(4242, batch.ProducerId);
        Assert.Equal(7, batch.ProducerEpoch);
        Assert.Equal(-1, batch.BaseSequence);
        Assert.Equal(1, batch.RecordCount);
        Assert.Equal(CompressionType.None, batch.Compression);

        var records = new List<Moldau.Protocol.Records.Record>();
        foreach (var r in batch.GetRecords())
        {
            records.Add(r);
        }

        var record = Assert.Single(records);
        var key = record.Key!.Value.Span;
        var value = record.Value!.Value.Span;
        Assert.Equal(4, key.Length);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(key));
        Assert.Equal((short)type, BinaryPrimitives.ReadInt16BigEndian(key[2..]));
        Assert.Equal(6, value.Length);
        Assert.Equal(0, BinaryPrimitives.ReadInt16BigEndian(value));
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(value[2..]));
        Assert.Equal(type, ControlRecordBatch.TypeOf(key));
        Assert.Equal(3, ControlRecordBatch.CoordinatorEpochOf(value));
    }

    [Fact]
    public void AKeyKafkaDoesNotKnowIsNotAMarker()
    {
        Assert.Null(ControlRecordBatch.TypeOf([0, 0, 0]));
        Assert.Null(ControlRecordBatch.TypeOf([0, 0, 0, 5]));
        Assert.Equal(-1, ControlRecordBatch.CoordinatorEpochOf([0, 0, 0]));
    }
}
