using System.Text;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Protocol.Tests;

/// <summary>Real client traffic (see Golden/README.md): decodes to the expected values and re-encodes to the same bytes.</summary>
public sealed class GoldenBytesTests
{
    private static byte[] Load(string name) => File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Golden", name));

    private static (RequestHeader Header, T Body) DecodeRequest<T>(byte[] frame)
        where T : IKafkaMessage, new()
    {
        Assert.True(RequestHeader.TryPeek(frame, out var key, out var version, out _));
        var header = new RequestHeader();
        var reader = new KafkaReader(frame);
        var headerVersion = RequestHeader.VersionFor(key, version);
        header.Read(ref reader, headerVersion);
        var body = new T();
        body.Read(ref reader, version);
        Assert.Equal(0, reader.Remaining);

        // Write it back: header and body, byte for byte.
        var again = new byte[header.Size(headerVersion) + body.Size(version)];
        var writer = new KafkaWriter(again);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        Assert.Equal(frame, again);
        return (header, body);
    }

    [Fact]
    public void ApiVersionsV3FromKcatUsesHeaderV2AndCompactStrings()
    {
        var (header, body) = DecodeRequest<ApiVersionsRequest>(Load("kcat-ApiVersions-v3-request.bin"));
        Assert.Equal((18, 3, 1), (header.ApiKey, header.ApiVersion, header.CorrelationId));
        Assert.Equal("kcat-golden", header.ClientId);
        Assert.Equal("librdkafka", body.ClientSoftwareName);
        Assert.Equal("2.0.2", body.ClientSoftwareVersion);
    }

    [Fact]
    public void MetadataV4FromKcat()
    {
        var (header, body) = DecodeRequest<MetadataRequest>(Load("kcat-Metadata-v4-request.bin"));
        Assert.Equal((3, 4), (header.ApiKey, header.ApiVersion));
        Assert.Equal("golden", Assert.Single(body.Topics!).Name);
        Assert.True(body.AllowAutoTopicCreation);
    }

    [Fact]
    public void ProduceV7FromKcatCarriesARecordBatchV2()
    {
        var (header, body) = DecodeRequest<ProduceRequest>(Load("kcat-Produce-v7-request.bin"));
        Assert.Equal((0, 7), (header.ApiKey, header.ApiVersion));
        Assert.Equal(-1, body.Acks);
        Assert.Null(body.TransactionalId);
        var partition = Assert.Single(Assert.Single(body.TopicData).PartitionData);
        var records = partition.Records!.Value;
        Assert.Equal(ErrorCode.None, RecordBatchValidator.ValidateProduce(records.Span));

        var batch = new RecordBatch(records);
        Assert.Equal((2, 0L, 3, 2), (batch.Magic, batch.BaseOffset, batch.RecordCount, batch.LastOffsetDelta));
        Assert.Equal(CompressionType.None, batch.Compression);
        Assert.Equal(-1L, batch.ProducerId);
        Assert.True(batch.IsCrcValid());
        var decoded = new List<(string, string)>();
        foreach (var r in batch.GetRecords())
        {
            decoded.Add((Encoding.UTF8.GetString(r.Key!.Value.Span), Encoding.UTF8.GetString(r.Value!.Value.Span)));
        }

        Assert.Equal([("k1", "v1"), ("k2", "v2"), ("k3", string.Empty)], decoded);
    }

    [Fact]
    public void ListOffsetsV2FromKcatAsksForEarliest()
    {
        var (_, body) = DecodeRequest<ListOffsetsRequest>(Load("kcat-ListOffsets-v2-request.bin"));
        Assert.Equal(-1, body.ReplicaId);
        var p = Assert.Single(Assert.Single(body.Topics).Partitions);
        Assert.Equal(-2, p.Timestamp);
    }

    [Fact]
    public void FetchV11FromKcat()
    {
        var (header, body) = DecodeRequest<FetchRequest>(Load("kcat-Fetch-v11-request.bin"));
        Assert.Equal((1, 11), (header.ApiKey, header.ApiVersion));
        Assert.Equal(-1, body.ReplicaId);
        Assert.Equal((0, -1), (body.SessionId, body.SessionEpoch));
        var p = Assert.Single(Assert.Single(body.Topics).Partitions);
        Assert.Equal(0, p.FetchOffset);
        Assert.Equal(string.Empty, body.RackId);
    }

    [Fact]
    public void MoldausFetchResponseCarriesTheStoredBatchUnchanged()
    {
        var frame = Load("moldau-Fetch-v11-response.bin");
        var reader = new KafkaReader(frame);
        Assert.Equal(5, ResponseHeader.Read(ref reader, 0));
        var response = new FetchResponse();
        response.Read(ref reader, 11);
        var p = Assert.Single(Assert.Single(response.Responses).Partitions);
        Assert.Equal(3, p.HighWatermark);

        // Same batch as produced, apart from the two fields the broker sets: base offset, leader epoch.
        var produced = new ProduceRequest();
        var produceFrame = Load("kcat-Produce-v7-request.bin");
        var pr = new KafkaReader(produceFrame);
        new RequestHeader().Read(ref pr, 1);
        produced.Read(ref pr, 7);
        var sent = produced.TopicData[0].PartitionData[0].Records!.Value.ToArray();
        var stored = p.Records!.Value.ToArray();
        Assert.Equal(sent.AsSpan(16).ToArray(), stored.AsSpan(16).ToArray());
        Assert.Equal(0, new RecordBatch(stored).PartitionLeaderEpoch);
        Assert.Equal(frame.AsSpan(4).ToArray(), response.ToBytes(11));
    }

    [Fact]
    public void MoldausApiVersionsResponseIsHeaderV0()
    {
        var frame = Load("moldau-ApiVersions-v3-response.bin");
        var reader = new KafkaReader(frame);
        Assert.Equal(1, ResponseHeader.Read(ref reader, 0));
        var body = new ApiVersionsResponse();
        body.Read(ref reader, 3);
        Assert.Equal(0, reader.Remaining);
        Assert.Contains(body.ApiKeys, k => k.ApiKey == 0 && k.MinVersion == 0);
    }
}
