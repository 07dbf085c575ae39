using System.Buffers;
using System.Reflection;
using BenchmarkDotNet.Attributes;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Broker.Handlers;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Storage;

namespace Moldau.Benchmarks;

/// <summary>
/// A Metadata request for every topic (v12, topics null) over many partitions, handled and
/// encoded as the pipeline does (size, then write into a pooled buffer). Topics of 1,000
/// partitions, over a registry whose metadata log and partition logs are stand-ins (nothing on
/// disk: only the handler and the image are measured). <c>FirstAnswer</c> is a handler that
/// has not answered yet (every partition entry made, as before the entries were kept);
/// <c>Answer</c> is the steady state, the image unchanged since the last answer.
/// </summary>
[MemoryDiagnoser]
public class MetadataScaleBenchmarks
{
    private readonly ConnectionSession _connection = new(1, null, "PLAINTEXT");
    private readonly RequestHeader _header = new() { ApiKey = (short)ApiKey.Metadata, ApiVersion = 12, CorrelationId = 1, ClientId = "bench" };
    private readonly MetadataRequest _request = new() { Topics = null };
    private BrokerState? _state;
    private MetadataHandler? _handler;

    /// <summary>Partitions in all (topics of 1,000).</summary>
    [Params(10_000, 100_000)]
    public int Partitions { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        var options = new BrokerOptions { LogDirs = [Path.GetTempPath()], AdvertisedEndpoints = [new("PLAINTEXT", "localhost", 9092)] };
        var registry = new TopicRegistry(options, NullLogger.Instance, TimeProvider.System, new NullMetadataStore(), new NullLogManager());
        registry.Load();
        for (var t = 0; t * 1000 < Partitions; t++)
        {
            var (error, _) = registry.Create($"scale-{t:D5}", Math.Min(1000, Partitions - (t * 1000)));
            if (error != ErrorCode.None)
            {
                throw new InvalidOperationException($"set-up failed: {error}");
            }
        }

        _state = new BrokerState(options, registry, "bench-cluster", TimeProvider.System, NullLogger.Instance);
        _handler = new MetadataHandler(_state);
        if (Answer() < Partitions * 20)
        {
            throw new InvalidOperationException("set-up failed: the answer is too short");
        }
    }

    [Benchmark(Baseline = true)]
    public int FirstAnswer() => Encode(new MetadataHandler(_state!).Handle(new RequestContext(_header, _connection, default), _request));

    [Benchmark]
    public int Answer() => Encode(_handler!.Handle(new RequestContext(_header, _connection, default), _request));

    private static int Encode(MetadataResponse response)
    {
        var size = response.Size(12);
        var buffer = ArrayPool<byte>.Shared.Rent(size);
        var writer = new KafkaWriter(buffer);
        response.Write(ref writer, 12);
        ArrayPool<byte>.Shared.Return(buffer);
        return size;
    }

    /// <summary>A metadata log that is empty and forgets what is appended.</summary>
    private sealed class NullMetadataStore : IMetadataStore
    {
        public MetadataReplayResult Replay(Func<MetadataBatch, string?> apply) => new(0, null);

        public void Append(IReadOnlyList<MetadataRecord> records)
        {
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Hands every partition the same log that does nothing: the partitions are online.</summary>
    private sealed class NullLogManager : ILogManager
    {
        private readonly IPartitionLog _log = DispatchProxy.Create<IPartitionLog, NothingProxy>();

        public bool Exists(LogPartition partition) => false;

        public IPartitionLog Open(LogPartition partition, IReadOnlyDictionary<string, string> topicConfigs) => _log;

        public IReadOnlyList<IPartitionLog> Create(IReadOnlyList<LogPartition> partitions, IReadOnlyDictionary<string, string> topicConfigs) =>
            partitions.Select(_ => _log).ToList();

        public void Delete(LogPartition partition, IPartitionLog? log)
        {
        }

        public void AdvanceLogStart(IPartitionLog log, long offset)
        {
        }

        public void WriteRecoveryPoints()
        {
        }

        public void WriteCleanerOffsets()
        {
        }

        public void Dispose()
        {
        }
    }

    /// <summary>Answers every call with the default of its return type.</summary>
    public class NothingProxy : DispatchProxy
    {
        protected override object? Invoke(MethodInfo? targetMethod, object?[]? args) =>
            targetMethod?.ReturnType is { IsValueType: true } t && t != typeof(void) ? Activator.CreateInstance(t) : null;
    }
}
