using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.IntegrationTests;

/// <summary>
/// A full disk or a partition whose log can't be opened fails that partition with
/// KAFKA_STORAGE_ERROR (56), logged once; the rest of the broker keeps serving, and the partition
/// comes back when the disk does, with no torn bytes in its log (issue 4).
/// </summary>
public sealed class DiskFailureTests
{
    private const int StorageError = (short)ErrorCode.KafkaStorageError;

    [SkippableFact]
    public async Task AFullDiskFailsOnlyItsPartitionWhichRecoversWhenSpaceReturns()
    {
        Skip.IfNot(OperatingSystem.IsLinux() && ExternalTool.Find("mount") is not null && ExternalTool.Find("umount") is not null, "needs Linux with mount and umount");
        var root = BrokerProcess.NewDataDir();
        var normal = Path.Combine(root, "normal");
        var small = Path.Combine(root, "small");
        Directory.CreateDirectory(normal);
        Directory.CreateDirectory(small);
        var mount = await ExternalTool.RunAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", small]);
        if (mount.ExitCode != 0)
        {
            Directory.Delete(root, recursive: true);
            Skip.If(true, $"cannot mount a tmpfs (needs root): {mount.Stderr.Trim()}");
        }

        try
        {
            // The first log dir holds the metadata log (a directory, made by the first metadata
            // change: a topic made and deleted), so the first partition created goes to the
            // emptier tmpfs and the second to the normal dir.
            await using var broker = await BrokerProcess.StartAsync(normal, new Dictionary<string, string> { ["log.dirs"] = $"{normal},{small}" });
            await using var client = await KafkaTestClient.ConnectAsync(broker.Port);
            await CreateTopicAsync(client, "first", 1);
            var deleted = await client.SendAsync<DeleteTopicsResponse>(ApiKey.DeleteTopics, 4, new DeleteTopicsRequest { TopicNames = ["first"], TimeoutMs = 10_000 });
            Assert.Equal(0, deleted.Responses.Single().ErrorCode);
            await CreateTopicAsync(client, "on-full", 1, ("segment.bytes", "65536"));
            await CreateTopicAsync(client, "on-normal", 1);
            Assert.True(Directory.Exists(Path.Combine(small, "on-full-0")));
            Assert.True(Directory.Exists(Path.Combine(normal, "on-normal-0")));

            // Leave about 200 KB free on the tmpfs.
            var filler = Path.Combine(small, "filler");
            await using (var f = File.Create(filler))
            {
                var chunk = new byte[64 * 1024];
                Array.Fill(chunk, (byte)1);
                for (var left = new DriveInfo(small).AvailableFreeSpace - (200 * 1024); left > 0; left -= chunk.Length)
                {
                    await f.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, left)));
                }
            }

            // Batches of ~7 KB, not a multiple of a page, so the failing write is a short one.
            var acked = new List<string>();
            var error = 0;
            for (var i = 0; i < 200 && error == 0; i++)
            {
                var value = $"full-{i}-" + new string('v', 7000);
                (error, var offset) = await ProduceAsync(client, "on-full", 0, value);
                if (error == 0)
                {
                    Assert.Equal(acked.Count, offset);
                    acked.Add(value);
                }
            }

            Assert.Equal(StorageError, error);
            Assert.InRange(acked.Count, 10, 40);

            // The partition keeps failing, and says so in one log line, not one per request.
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal(StorageError, (await ProduceAsync(client, "on-full", 0, "still full " + new string('v', 7000))).Error);
            }

            Assert.Single(broker.Output.Split('\n'), l => l.Contains("on-full-0: append failed", StringComparison.Ordinal));

            // The rest of the broker serves: another partition, Metadata, ApiVersions, and the
            // records already stored on the full disk.
            for (var i = 0; i < 5; i++)
            {
                Assert.Equal((0, (long)i), await ProduceAsync(client, "on-normal", 0, $"normal-{i}"));
            }

            Assert.Equal(0, (await client.SendAsync<ApiVersionsResponse>(ApiKey.ApiVersions, 3, new ApiVersionsRequest())).ErrorCode);
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "on-full" }, new() { Name = "on-normal" }] });
            Assert.All(metadata.Topics.SelectMany(t => t.Partitions), p => Assert.Equal((0, 1), ((int)p.ErrorCode, p.LeaderId)));
            Assert.Equal(acked, (await FetchAsync(client, "on-full", 0)).Values);
            Assert.Equal(Enumerable.Range(0, 5).Select(i => $"normal-{i}"), (await FetchAsync(client, "on-normal", 0)).Values);

            // No torn bytes: the segment files hold exactly the acknowledged batches.
            long stored = 0;
            foreach (var segment in Directory.GetFiles(Path.Combine(small, "on-full-0"), "*.log"))
            {
                stored += (await SegmentFile.ReadBatchesAsync(segment)).Length;
            }

            Assert.Equal((await FetchAsync(client, "on-full", 0)).Bytes, stored);

            // Space returns: the next produce succeeds, at the next offset.
            File.Delete(filler);
            for (var i = 0; i < 5; i++)
            {
                var value = $"after-{i}-" + new string('v', 7000);
                Assert.Equal((0, (long)acked.Count), await ProduceAsync(client, "on-full", 0, value));
                acked.Add(value);
            }

            Assert.Contains("on-full-0: appends work again", broker.Output, StringComparison.Ordinal);
            var all = await FetchAsync(client, "on-full", 0);
            Assert.Equal(Enumerable.Range(0, acked.Count).Select(i => (long)i), all.Offsets);
            Assert.Equal(acked, all.Values);

            // And a restart (recovery walks every batch) finds the same log, nothing cut.
            Assert.Equal(0, await broker.StopAsync());
            await broker.RestartAsync();
            await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
            var reread = await FetchAsync(again, "on-full", 0);
            Assert.Equal(all.Offsets, reread.Offsets);
            Assert.Equal(acked, reread.Values);
        }
        finally
        {
            // The broker is stopped by now (its files on the tmpfs closed); a lazy unmount covers the rest.
            if ((await ExternalTool.RunAsync("umount", [small])).ExitCode != 0)
            {
                await ExternalTool.RunAsync("umount", ["-l", small]);
            }

            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public async Task APartitionWhoseLogCannotBeOpenedIsOfflineWhileTheRestServe()
    {
        await using var broker = await BrokerProcess.StartAsync(properties: new Dictionary<string, string>());
        var aside = BrokerProcess.NewDataDir();
        try
        {
            await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
            {
                await CreateTopicAsync(client, "t", 2);
                for (var i = 0; i < 3; i++)
                {
                    Assert.Equal((0, (long)i), await ProduceAsync(client, "t", 0, $"zero-{i}"));
                    Assert.Equal((0, (long)i), await ProduceAsync(client, "t", 1, $"one-{i}"));
                }
            }

            // chmod doesn't stop root, so the segment of t-1 becomes a directory of the same name:
            // its log can't be opened by anyone.
            Assert.Equal(0, await broker.StopAsync());
            var segment = Path.Combine(broker.DataDir, "t-1", "00000000000000000000.log");
            File.Move(segment, Path.Combine(aside, "segment"));
            Directory.CreateDirectory(segment);
            await broker.RestartAsync();
            await using var again = await KafkaTestClient.ConnectAsync(broker.Port);

            var metadata = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "t" }] });
            var partitions = metadata.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, (int)p.ErrorCode, p.LeaderId, Offline: p.OfflineReplicas.Count))).OrderBy(p => p.Name).ThenBy(p => p.PartitionIndex);
            const int leaderNotAvailable = (int)ErrorCode.LeaderNotAvailable;
            Assert.Equal([("t", 0, 0, 1, 0), ("t", 1, leaderNotAvailable, -1, 1)], partitions);

            // The offline partitions answer 56; the other one serves.
            Assert.Equal((0, 3L), await ProduceAsync(again, "t", 0, "zero-3"));
            Assert.Equal(StorageError, (await ProduceAsync(again, "t", 1, "one-3")).Error);
            Assert.Equal(["zero-0", "zero-1", "zero-2", "zero-3"], (await FetchAsync(again, "t", 0)).Values);
            Assert.Equal(StorageError, (await FetchAsync(again, "t", 1)).Error);
            var listed = await again.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "t", Partitions = [new() { PartitionIndex = 1, Timestamp = -1 }] }] });
            Assert.Equal(StorageError, listed.Topics.Single().Partitions.Single().ErrorCode);
            Assert.Single(broker.Output.Split('\n'), l => l.Contains("t-1 is offline", StringComparison.Ordinal) && l.Contains("KAFKA_STORAGE_ERROR", StringComparison.Ordinal));

            // Once the disk is fixed the partitions come back without a restart (retried every few
            // seconds), t-1 with its records.
            Directory.Delete(segment);
            File.Move(Path.Combine(aside, "segment"), segment);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            (int Error, long Offset) produced;
            while ((produced = await ProduceAsync(again, "t", 1, "one-3")).Error == StorageError && DateTime.UtcNow < deadline)
            {
                await Task.Delay(250);
            }

            Assert.Equal((0, 3L), produced);
            Assert.Equal(["one-0", "one-1", "one-2", "one-3"], (await FetchAsync(again, "t", 1)).Values);
            Assert.Contains("t-1 is back online", broker.Output, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(aside, recursive: true);
        }
    }

    private static async Task CreateTopicAsync(KafkaTestClient client, string name, int partitions, params (string Name, string Value)[] configs)
    {
        var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = partitions, ReplicationFactor = 1, Configs = [.. configs.Select(c => new CreateTopicsRequest.CreatableTopicConfig { Name = c.Name, Value = c.Value })] }],
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
    }

    private static async Task<(int Error, long Offset)> ProduceAsync(KafkaTestClient client, string topic, int partition, string value)
    {
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(value), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds())]);
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10_000,
            TopicData = [new() { Name = topic, PartitionData = [new() { Index = partition, Records = batch }] }],
        });
        var p = response.Responses.Single().PartitionResponses.Single();
        return (p.ErrorCode, p.BaseOffset);
    }

    /// <summary>Every record of the partition up to the high watermark (a fetch stops at a segment's end, so it fetches on).</summary>
    private static async Task<(int Error, List<long> Offsets, List<string> Values, long Bytes)> FetchAsync(KafkaTestClient client, string topic, int partition)
    {
        var offsets = new List<long>();
        var values = new List<string>();
        long bytes = 0;
        while (true)
        {
            var response = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
            {
                MaxBytes = 16 << 20,
                SessionEpoch = -1,
                Topics = [new() { Topic = topic, Partitions = [new() { Partition = partition, FetchOffset = offsets.Count == 0 ? 0 : offsets[^1] + 1, PartitionMaxBytes = 16 << 20 }] }],
            });
            var p = response.Responses.Single().Partitions.Single();
            var records = p.Records ?? ReadOnlyMemory<byte>.Empty;
            if (p.ErrorCode != 0 || records.IsEmpty)
            {
                return (p.ErrorCode, offsets, values, bytes);
            }

            for (var position = 0; position < records.Length;)
            {
                var size = (int)RecordBatch.DeclaredSize(records.Span[position..]);
                var batch = new RecordBatch(records.Slice(position, size));
                Assert.True(batch.IsCrcValid());
                foreach (var r in batch.GetRecords())
                {
                    offsets.Add(batch.BaseOffset + r.OffsetDelta);
                    values.Add(Encoding.UTF8.GetString(r.Value!.Value.Span));
                }

                position += size;
            }

            bytes += records.Length;
        }
    }
}
