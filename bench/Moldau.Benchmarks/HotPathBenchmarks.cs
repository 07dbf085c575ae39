using BenchmarkDotNet.Attributes;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Benchmarks;

/// <summary>
/// The produce and fetch hot path piece by piece: request decode, batch validation (CRC32C),
/// segment append and read, response encode. Allocations are reported per operation.
/// </summary>
[MemoryDiagnoser]
public class HotPathBenchmarks
{
    private byte[] _produceBody = [];
    private byte[] _batch = [];
    private FetchResponse _fetchResponse = new();
    private string _dir = string.Empty;
    private PartitionLog? _log;
    private readonly byte[] _scratch = new byte[64 * 1024];
    private readonly List<byte[]> _rented = [];

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
        _dir = Path.Combine(Path.GetTempPath(), "moldau-bench-" + Guid.NewGuid().ToString("N")[..8]);
        _log = PartitionLog.Open(_dir, new PartitionLogOptions { SyncBeforeAck = false, SegmentBytes = 256L << 20 }, TimeProvider.System);
        for (var i = 0; i < 1000; i++)
        {
            _log.Append(_batch.ToArray(), 0);
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _log?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Description = "Produce v9 request decode")]
    public int DecodeProduce() => KafkaMessageExtensions.Decode<ProduceRequest>(_produceBody, 9).TopicData.Count;

    [Benchmark(Description = "RecordBatch validation (CRC32C, 16 KiB)")]
    public ErrorCode ValidateBatch() => RecordBatchValidator.ValidateProduce(_batch);

    [Benchmark(Description = "Segment append (16 KiB, page cache)")]
    public long Append()
    {
        // The broker appends the request's own bytes; the copy here only restores them.
        _batch.CopyTo(_scratch, 0);
        return _log!.Append(_scratch.AsSpan(0, _batch.Length), 0).BaseOffset;
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
