using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;
using Moldau.Protocol.Records;
using Moldau.Storage.Metadata;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// Metadata-log replay at start-up: the input's first byte's bit 0 says whether the harness fixes
/// the batches' CRCs (see <see cref="BatchCrc"/>), the rest is written as the first segment of
/// <c>__cluster_metadata-0</c> in an empty log dir, and the topic registry loads it (reads the
/// records, applies each, opens the partitions they name). No exception may come out: a corrupt
/// log must stop replay with a log line, not stop the broker.
/// </summary>
internal sealed class MetadataTarget : FuzzTarget
{
    public override string Name => "metadata";

    public override string Description => "TopicRegistry.Load over a __cluster_metadata-0 segment";

    public override bool IsExpected(Exception e) => false;

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var logDir = ScratchDirectory.Fresh("metadata");
        var metadataDir = Path.Combine(logDir, TopicRegistry.MetadataLogDirectory);
        Directory.CreateDirectory(metadataDir);
        var segment = input[1..].ToArray();
        if ((input.Span[0] & 1) != 0)
        {
            BatchCrc.FixAll(segment);
        }

        File.WriteAllBytes(Path.Combine(metadataDir, "00000000000000000000.log"), segment);
        var options = new BrokerOptions { LogDirs = [logDir], Properties = new Dictionary<string, string> { ["moldau.log.direct.io"] = "false" } };
        using var registry = new TopicRegistry(options, NullLogger.Instance, TimeProvider.System);
        registry.Load();
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        var topicId = new Uuid(0x1234, 0x5678);
        var records = new List<byte[]>
        {
            MetadataLogReader.Frame(TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "orders", TopicId = topicId }.ToBytes(0)),
            MetadataLogReader.Frame(PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 0, TopicId = topicId, Replicas = [1], Isr = [1], Leader = 1 }.ToBytes(0)),
            MetadataLogReader.Frame(PartitionChangeRecord.SpecApiKey, 0, new PartitionChangeRecord { PartitionId = 0, TopicId = topicId, Leader = 1 }.ToBytes(0)),
            MetadataLogReader.Frame(ConfigRecord.SpecApiKey, 0, new ConfigRecord { ResourceType = TopicRegistry.TopicResource, ResourceName = "orders", Name = "cleanup.policy", Value = "compact" }.ToBytes(0)),
            MetadataLogReader.Frame(ProducerIdsRecord.SpecApiKey, 0, new ProducerIdsRecord { BrokerId = 1, NextProducerId = 1000 }.ToBytes(0)),
            MetadataLogReader.Frame(RemoveTopicRecord.SpecApiKey, 0, new RemoveTopicRecord { TopicId = topicId }.ToBytes(0)),
        };
        var batch = RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(null, r, 1_700_000_000_000)).ToList());
        yield return ("topic-lifecycle", [1, .. batch]);
        yield return ("topic-only", [1, .. RecordBatchBuilder.Build(records.Take(3).Select(r => new RecordToWrite(null, r, 1_700_000_000_000)).ToList())]);
    }
}
