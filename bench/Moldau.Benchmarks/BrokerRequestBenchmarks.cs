using System.Buffers;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Benchmarks;

/// <summary>
/// Whole requests through <see cref="KafkaBroker.Dispatch"/>, the in-memory connection: frame in,
/// response frame out (returned to the pool as the connection does). What a Produce and a Fetch
/// allocate per request in steady state.
/// </summary>
[MemoryDiagnoser]
public class BrokerRequestBenchmarks
{
    private readonly ConnectionSession _connection = new(1, null, "PLAINTEXT");
    private string _dir = string.Empty;
    private KafkaBroker? _broker;
    private byte[] _produce = [];
    private byte[] _fetch = [];

    private static byte[] Frame(ApiKey key, short version, IKafkaMessage body)
    {
        var spec = ApiSpecs.Find((short)key)!;
        var header = new RequestHeader { ApiKey = (short)key, ApiVersion = version, CorrelationId = 7, ClientId = "bench" };
        var headerVersion = spec.RequestHeaderVersion(version);
        var frame = new byte[header.Size(headerVersion) + body.Size(version)];
        var writer = new KafkaWriter(frame);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        return frame;
    }

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "moldau-bench-broker-" + Guid.NewGuid().ToString("N")[..8]);
        _broker = new KafkaBroker(
            new BrokerOptions
            {
                LogDirs = [_dir],
                AdvertisedEndpoints = [new("PLAINTEXT", "localhost", 9092)],
                Properties = new Dictionary<string, string> { ["log.flush.interval.messages"] = "9223372036854775807" },
            },
            NullLoggerFactory.Instance,
            TimeProvider.System);
        _broker.Start();
        var batch = RecordBatchBuilder.Build(Enumerable.Range(0, 160).Select(i => new RecordToWrite(null, new byte[100], 1_700_000_000_000 + i)).ToList());
        _produce = Frame(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = 1,
            TimeoutMs = 30000,
            TopicData = [new() { Name = "bench", PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        _fetch = Frame(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxWaitMs = 0,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "bench", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 64 * 1024 }] }],
        });
        var created = Send(Frame(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = "bench", NumPartitions = 1, ReplicationFactor = 1 }],
        }));
        for (var i = 0; i < 100; i++)
        {
            Produce();
        }

        // Make sure the measured requests do the real work, not an error path.
        var fetched = Fetch();
        if (created <= 0 || fetched < 32 * 1024 || Produce() < 20)
        {
            throw new InvalidOperationException($"set-up failed: create {created} B, fetch {fetched} B");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _broker!.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    private int Send(byte[] frame)
    {
        // As the connection does: a request that completed synchronously is read without a Task.
        var pending = _broker!.Dispatch(frame, _connection, CancellationToken.None);
        var result = pending.IsCompletedSuccessfully ? pending.Result : pending.AsTask().GetAwaiter().GetResult();
        if (result.Pooled)
        {
            ArrayPool<byte>.Shared.Return(result.Response!);
        }

        return result.Length;
    }

    [Benchmark(Description = "Produce v9, 16 KiB batch, acks=1, through Dispatch")]
    public int Produce() => Send(_produce);

    [Benchmark(Description = "Fetch v12, 64 KiB from offset 0, through Dispatch")]
    public int Fetch() => Send(_fetch);
}
