using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker.Topics;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Metadata;
using Moldau.Protocol.Records;
using Moldau.Storage.Metadata;

namespace Moldau.Broker.Tests.Metadata;

/// <summary>
/// The registry over real files: a live change and a restart make the same image, readers never
/// see half a change, and a broken metadata log stops replay where it breaks.
/// </summary>
public sealed class TopicRegistryImageTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-image-" + Guid.NewGuid().ToString("N")[..10]);

    private BrokerOptions Options => new() { LogDirs = [_dir], Properties = new Dictionary<string, string> { ["moldau.log.direct.io"] = "false" } };

    private string MetadataDir => Path.Combine(_dir, TopicRegistry.MetadataLogDirectory);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private TopicRegistry Open()
    {
        var registry = new TopicRegistry(Options, NullLogger.Instance, TimeProvider.System);
        registry.Load();
        return registry;
    }

    [Fact]
    public void ALiveChangeAndARestartMakeTheSameImage()
    {
        string live;
        long lastId;
        using (var registry = Open())
        {
            Assert.Equal(ErrorCode.None, registry.Create("orders", 2, new Dictionary<string, string> { ["cleanup.policy"] = "compact" }).Error);
            Assert.Equal(ErrorCode.None, registry.Create("gone", 1).Error);
            Assert.Equal(ErrorCode.None, registry.Create("events", 1).Error);
            Assert.Equal(ErrorCode.None, registry.AddPartitions(registry.Find("events")!, 3));
            registry.SetConfigs(registry.Find("orders"), [("retention.ms", "60000"), ("cleanup.policy", null)]);
            registry.SetConfigs(null, [("log.retention.ms", "1000")]);
            Assert.Equal(ErrorCode.None, registry.Delete(registry.Find("gone")!));
            var ids = new ProducerIdManager(registry.AllocateProducerIdBlock);
            for (var i = 0; i < TopicRegistry.ProducerIdBlockSize + 1; i++)
            {
                lastId = ids.GenerateProducerId();
            }

            lastId = ids.GenerateProducerId();
            Assert.Equal(TopicRegistry.ProducerIdBlockSize + 1, lastId);
            live = ImageText.Of(registry.Image);
            Assert.Contains("config retention.ms=60000", live, StringComparison.Ordinal);
            Assert.DoesNotContain("cleanup.policy", live, StringComparison.Ordinal);
            Assert.DoesNotContain("gone", live, StringComparison.Ordinal);
            Assert.Equal(3, registry.Find("events")!.Partitions.Count(p => p.Log is not null));
            Assert.False(Directory.Exists(Path.Combine(_dir, "gone-0")));
        }

        using (var restarted = Open())
        {
            Assert.Equal(live, ImageText.Of(restarted.Image));
            Assert.All(restarted.Topics.SelectMany(t => t.Partitions), p => Assert.NotNull(restarted.LogOf(p)));

            // The ids of a block taken before the restart are never handed out again.
            Assert.True(new ProducerIdManager(restarted.AllocateProducerIdBlock).GenerateProducerId() > lastId);
        }
    }

    [Fact]
    public async Task ReadersNeverSeeHalfAChange()
    {
        using var registry = Open();
        registry.Create("t", 1);
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var seen = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                var image = registry.Image;
                var topic = image.Find("t")!;
                var configs = topic.Configs;

                // Each change writes both keys with one value: seeing them differ is seeing half of it.
                var a = configs.GetValueOrDefault("retention.ms");
                var b = configs.GetValueOrDefault("retention.bytes");
                var consistent = a == b
                    && ReferenceEquals(image.Find(topic.Id), topic)
                    && topic.Partitions.All(p => p is not null && ReferenceEquals(p.Topic, topic))
                    && topic.Partitions.Select(p => p.Index).SequenceEqual(Enumerable.Range(0, topic.Partitions.Length));
                if (!consistent)
                {
                    Interlocked.Increment(ref failures);
                }

                Interlocked.Increment(ref seen);
            }
        })).ToList();

        // The readers must be reading while the changes are made, not only after them.
        Assert.True(SpinWait.SpinUntil(() => Volatile.Read(ref seen) > 0, TimeSpan.FromSeconds(10)));
        for (var i = 1; i <= 60; i++)
        {
            var value = i.ToString(System.Globalization.CultureInfo.InvariantCulture);
            registry.SetConfigs(registry.Find("t"), [("retention.ms", value), ("retention.bytes", value)]);
            if (i % 10 == 0)
            {
                Assert.Equal(ErrorCode.None, registry.AddPartitions(registry.Find("t")!, 1 + (i / 10)));
            }
        }

        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.True(seen > 0);
        Assert.Equal(0, failures);
    }

    [Fact]
    public void AnUndecodableBatchStopsReplayAndIsCut()
    {
        var good = new Uuid(5, 5);
        var after = new Uuid(6, 6);
        Directory.CreateDirectory(MetadataDir);
        byte[] Batch(long baseOffset, params byte[][] framed)
        {
            var batch = RecordBatchBuilder.Build([.. framed.Select(f => new RecordToWrite(null, f, 1_700_000_000_000))]);
            System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(batch, baseOffset);
            return batch;
        }

        var first = Batch(0, MetadataLogReader.Frame(TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "kept", TopicId = good }.ToBytes(0)));

        // CRC-valid, but the TopicRecord's body is cut short: it doesn't decode.
        var broken = Batch(1, MetadataLogReader.Frame(TopicRecord.SpecApiKey, 0, new byte[] { 0x05 }));
        var third = Batch(2, MetadataLogReader.Frame(TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "dropped", TopicId = after }.ToBytes(0)));
        var segment = Path.Combine(MetadataDir, "00000000000000000000.log");
        File.WriteAllBytes(segment, [.. first, .. broken, .. third]);

        using (var registry = Open())
        {
            Assert.Equal(["kept"], registry.Topics.Select(t => t.Name));
            Assert.Equal(first.Length, new FileInfo(segment).Length);

            // Appends go on after the last batch applied, and a restart reads them.
            registry.Create("later", 1);
        }

        using var restarted = Open();
        Assert.Equal(["kept", "later"], restarted.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
    }
}
