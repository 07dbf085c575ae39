using BenchmarkDotNet.Attributes;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Benchmarks;

/// <summary>
/// What checking every record costs on top of the header check (CRC32C), for the batches of the
/// standard set: P1 (librdkafka, 100 B records, batches up to 1 MB) and P3 (1 KiB records), and a
/// zstd batch, which must be inflated to be checked.
/// </summary>
[MemoryDiagnoser]
public class RecordValidationBenchmarks
{
    private static readonly RecordChecks Checks = new("bench", 0, RequireKeys: false);
    private byte[] _p1 = [];
    private byte[] _p3 = [];
    private byte[] _p1Zstd = [];

    [GlobalSetup]
    public void Setup()
    {
        _p1 = Batch(10_000, 100, CompressionType.None);
        _p3 = Batch(1_000, 1024, CompressionType.None);
        _p1Zstd = Batch(10_000, 100, CompressionType.Zstd);
    }

    [Benchmark(Description = "P1 batch (10,000 x 100 B, 1.1 MB): header + CRC only")]
    public ErrorCode P1Header() => RecordBatchValidator.ValidateProduce(_p1);

    [Benchmark(Description = "P1 batch (10,000 x 100 B, 1.1 MB): every record")]
    public ErrorCode P1Records() => RecordBatchValidator.Validate(_p1, Checks).Error;

    [Benchmark(Description = "P3 batch (1,000 x 1 KiB, 1.0 MB): header + CRC only")]
    public ErrorCode P3Header() => RecordBatchValidator.ValidateProduce(_p3);

    [Benchmark(Description = "P3 batch (1,000 x 1 KiB, 1.0 MB): every record")]
    public ErrorCode P3Records() => RecordBatchValidator.Validate(_p3, Checks).Error;

    [Benchmark(Description = "P1 batch, zstd: every record, inflated as a stream")]
    public ErrorCode P1ZstdRecords() => RecordBatchValidator.Validate(_p1Zstd, Checks).Error;

    private static byte[] Batch(int count, int size, CompressionType codec)
    {
        var random = new Random(1);
        return RecordBatchBuilder.Build(
            [.. Enumerable.Range(0, count).Select(i =>
            {
                var value = new byte[size];
                random.NextBytes(value.AsSpan(0, size / 2)); // half random: compressible as real payloads are
                return new RecordToWrite(null, value, 1_700_000_000_000 + i);
            })],
            compression: codec);
    }
}
