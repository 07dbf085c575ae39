using BenchmarkDotNet.Attributes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Server.Network;
using Moldau.Storage;

namespace Moldau.Benchmarks;

/// <summary>
/// The produce and fetch hot path piece by piece: frame cutting, request decode, batch
/// validation (CRC32C), segment append and read, response encode. Allocations are reported per
/// operation.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks
{
    private byte[] _produceBody = [];
    private byte[] _batch = [];
    private FetchResponse _fetchResponse = new();
    private string _dir = string.Empty;
    private PartitionLog? _log;
    private string _bufferedDir = string.Empty;
    private PartitionLog? _bufferedLog;
    private byte[] _fetchBody = [];
    private readonly ProduceRequest _reusedProduce = new();
    private readonly FetchRequest _reusedFetch = new();
    private ProduceResponse _produceResponse = new();
    private byte[] _received = [];
    private readonly byte[] _scratch = new byte[64 * 1024];
    private readonly List<byte[]> _rented = [];

    // As in the broker: one storage runtime (four flusher and four reader threads) for both logs.
    private readonly StorageRuntime _storage = new();

    [GlobalSetup]
    public void Setup()
    {
        // A 16 KiB batch of 160 x 100-byte records, as librdkafka sends under load.
        _batch = RecordBatchBuilder.Build(Enumerable.Range(0, 160).Select(i => new RecordToWrite(null, new byte[100], 1_700_000_000_000 + i)).ToList());
        _produceBody = new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 30000,
            TopicData = [new() { Name = "bench", PartitionData = [new() { Index = 0, Records = _batch }] }],
        }.ToBytes(9);
        _fetchResponse = new FetchResponse
        {
            Responses = [new() { Topic = "bench", Partitions = [new() { PartitionIndex = 0, HighWatermark = 1000, LastStableOffset = 1000, LogStartOffset = 0, Records = new byte[64 * 1024] }] }],
        };
        _fetchBody = new FetchRequest
        {
            MaxWaitMs = 500,
            MinBytes = 1,
            MaxBytes = 50 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "bench", Partitions = [.. Enumerable.Range(0, 8).Select(p => new FetchRequest.FetchPartition { Partition = p, FetchOffset = 1000, PartitionMaxBytes = 1 << 20 })] }],
        }.ToBytes(12);
        _produceResponse = new ProduceResponse
        {
            Responses = [new() { Name = "bench", PartitionResponses = [new() { Index = 0, BaseOffset = 1000, LogAppendTimeMs = -1, LogStartOffset = 0 }] }],
        };

        // What a receive buffer holds under a stream of small requests: 200 frames of 300 bytes.
        _received = new byte[200 * 304];
        for (var i = 0; i < 200; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(_received.AsSpan(i * 304), 300);
        }

        _bufferedDir = Path.Combine(Path.GetTempPath(), "moldau-bench-" + Guid.NewGuid().ToString("N")[..8]);
        _bufferedLog = PartitionLog.Open(_bufferedDir, new PartitionLogOptions { SyncBeforeAck = false, SegmentBytes = 256L << 20, DirectIo = false }, TimeProvider.System, _storage);
        _dir = Path.Combine(Path.GetTempPath(), "moldau-bench-" + Guid.NewGuid().ToString("N")[..8]);
        _log = PartitionLog.Open(_dir, new PartitionLogOptions { SyncBeforeAck = false, SegmentBytes = 256L << 20 }, TimeProvider.System, _storage);
        for (var i = 0; i < 1000; i++)
        {
            _log.Append(_batch.ToArray(), 0);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log?.Dispose();
        _bufferedLog?.Dispose();
        _storage.Dispose();
        Directory.Delete(_dir, recursive: true);
        Directory.Delete(_bufferedDir, recursive: true);
    }

    [Benchmark(Description = "Frame cutting (200 x 300 B frames in a receive buffer, pooled bodies)")]
    public int CutFrames()
    {
        // As the connection does: check the prefix, rent the body, copy it out, (dispatch,) return it.
        var cut = 0;
        for (var start = 0; KafkaConnection.Cut(_received.AsSpan(start), 100 << 20, 64 * 1024, out var size) == KafkaConnection.FrameState.Complete; start += 4 + size)
        {
            var body = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
            _received.AsSpan(start + 4, size).CopyTo(body);
            System.Buffers.ArrayPool<byte>.Shared.Return(body);
            cut++;
        }

        return cut;
    }

    [Benchmark(Description = "Produce v9 request decode (new object)")]
    public int DecodeProduce() => KafkaMessageExtensions.Decode<ProduceRequest>(_produceBody, 9).TopicData.Count;

    [Benchmark(Description = "Produce v9 request decode (reused object, as the broker does)")]
    public int DecodeProduceReused()
    {
        var reader = new KafkaReader(_produceBody);
        _reusedProduce.Read(ref reader, 9);
        return _reusedProduce.TopicData.Count;
    }

    [Benchmark(Description = "Fetch v12 request decode (8 partitions, reused object)")]
    public int DecodeFetchReused()
    {
        var reader = new KafkaReader(_fetchBody);
        _reusedFetch.Read(ref reader, 12);
        return _reusedFetch.Topics.Count;
    }

    [Benchmark(Description = "Produce v9 response encode (pooled frame)")]
    public int EncodeProduce()
    {
        var size = _produceResponse.Size(9);
        var frame = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
        var writer = new KafkaWriter(frame.AsSpan(0, size));
        _produceResponse.Write(ref writer, 9);
        System.Buffers.ArrayPool<byte>.Shared.Return(frame);
        return writer.Position;
    }

    [Benchmark(Description = "RecordBatch validation (CRC32C, 16 KiB)")]
    public ErrorCode ValidateBatch() => RecordBatchValidator.ValidateProduce(_batch);

    [Benchmark(Description = "Segment append (16 KiB, direct I/O)")]
    public long Append()
    {
        // The broker appends the request's own bytes; the copy here only restores them.
        _batch.CopyTo(_scratch, 0);
        return _log!.Append(_scratch.AsSpan(0, _batch.Length), 0).BaseOffset;
    }

    [Benchmark(Description = "Segment append (16 KiB, page cache)")]
    public long AppendBuffered()
    {
        _batch.CopyTo(_scratch, 0);
        return _bufferedLog!.Append(_scratch.AsSpan(0, _batch.Length), 0).BaseOffset;
    }

    [Benchmark(Description = "Segment read (1 MiB from offset 80,000, pooled)")]
    public int Read()
    {
        var length = _log!.Read(80_000, 1 << 20, wholeFirstBatchUpTo: long.MaxValue, _log.HighWatermark, _rented).Length;
        foreach (var buffer in _rented)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }

        _rented.Clear();
        return length;
    }

    [Benchmark(Description = "Fetch v12 response encode (64 KiB records, pooled frame)")]
    public int EncodeFetch()
    {
        var size = _fetchResponse.Size(12);
        var frame = System.Buffers.ArrayPool<byte>.Shared.Rent(size);
        var writer = new KafkaWriter(frame.AsSpan(0, size));
        _fetchResponse.Write(ref writer, 12);
        System.Buffers.ArrayPool<byte>.Shared.Return(frame);
        return writer.Position;
    }
}
