using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Metadata;
using Moldau.Protocol.Records;
using Moldau.Storage.Metadata;

namespace Moldau.IntegrationTests;

/// <summary>
/// A torn tail cut by recovery bumps the partition's leader epoch (KIP-320): clients holding the
/// old epoch are fenced and learn from OffsetForLeaderEpoch where it ended.
/// </summary>
public sealed class LeaderEpochTests
{
    private const string Topic = "torn";

    private static byte[] Batch(params string[] values) =>
        RecordBatchBuilder.Build(values.Select(v => new RecordToWrite(null, Encoding.UTF8.GetBytes(v), 1000)).ToList());

    [Fact]
    public async Task RecoveryThatTruncatesBumpsTheLeaderEpoch()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }], AllowAutoTopicCreation = true });
            for (var i = 0; i < 3; i++)
            {
                var produced = await ProduceAsync(client, Batch($"a{i}", $"b{i}"));
                Assert.Equal((0, 2L * i), produced);
            }
        }

        // A crash in the middle of writing a fourth batch: only its first half reached the file.
        await broker.KillAsync();
        var partitionDir = Path.Combine(broker.DataDir, Topic + "-0");
        var checkpoint = Path.Combine(partitionDir, "leader-epoch-checkpoint");
        Assert.Equal("0\n1\n0 0\n", await File.ReadAllTextAsync(checkpoint));
        var torn = Batch("lost", "too");
        await using (var segment = new FileStream(Path.Combine(partitionDir, "00000000000000000000.log"), FileMode.Append))
        {
            segment.Write(torn.AsSpan(0, torn.Length / 2));
        }

        await broker.RestartAsync();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            await AssertEpochAsync(client, broker, expectedEnd: 6);

            // New batches are stamped with the new epoch, and ListOffsets reports it.
            Assert.Equal((0, 6L), await ProduceAsync(client, Batch("c")));
            var fetched = await FetchAsync(client, currentLeaderEpoch: 1, offset: 6);
            Assert.Equal(0, fetched.ErrorCode);
            Assert.Equal(1, new RecordBatch(fetched.Records!.Value).PartitionLeaderEpoch);
            var offsets = await client.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest
            {
                ReplicaId = -1,
                Topics = [new() { Name = Topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -1, CurrentLeaderEpoch = 1 }, new() { PartitionIndex = 0, Timestamp = -2 }] }],
            });
            Assert.Equal([(0, 7L, 1), (0, 0L, 0)], offsets.Topics.Single().Partitions.Select(p => ((int)p.ErrorCode, p.Offset, p.LeaderEpoch)));
        }

        // The bump is in the metadata log, so a clean restart keeps it; the checkpoint keeps both epochs.
        Assert.Equal(0, await broker.StopAsync());
        var changes = MetadataLogReader.ReadAll(Path.Combine(broker.DataDir, "__cluster_metadata-0"))
            .Where(r => r.RecordType == PartitionChangeRecord.SpecApiKey)
            .Select(r => KafkaMessageExtensions.Decode<PartitionChangeRecord>(r.Body, r.RecordVersion))
            .ToList();
        Assert.Equal((0, 1), (Assert.Single(changes).PartitionId, changes[0].Leader));
        await broker.RestartAsync();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            await AssertEpochAsync(client, broker, expectedEnd: 6);
        }

        Assert.Equal("0\n2\n0 0\n1 6\n", await File.ReadAllTextAsync(checkpoint));
    }

    [Fact]
    public async Task AKillWithoutATornTailKeepsTheEpoch()
    {
        await using var broker = await BrokerProcess.StartAsync();
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }], AllowAutoTopicCreation = true });
            await ProduceAsync(client, Batch("x"));
        }

        await broker.KillAsync();
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var metadata = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }] });
        Assert.Equal(0, metadata.Topics.Single().Partitions.Single().LeaderEpoch);
        Assert.DoesNotContain("leader epoch", broker.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APartitionMissingFromTheMetadataLogKeepsItsBumpedEpochToo()
    {
        // The metadata log names partition 1 only; partition 0 (a hole) has a log with a torn tail.
        var dataDir = BrokerProcess.NewDataDir();
        var id = Uuid.NewRandom();
        using (var writer = new MetadataLogWriter(Path.Combine(dataDir, "__cluster_metadata-0"), TimeProvider.System))
        {
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = Topic, TopicId = id }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 1, TopicId = id, Replicas = [1], Isr = [1], Leader = 1 }.ToBytes(0)),
            ]);
        }

        var partitionDir = Path.Combine(dataDir, Topic + "-0");
        Directory.CreateDirectory(partitionDir);
        var whole = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("kept"), 1)], baseOffset: 0, partitionLeaderEpoch: 0);
        var torn = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("torn"), 2)], baseOffset: 1, partitionLeaderEpoch: 0);
        File.WriteAllBytes(Path.Combine(partitionDir, "00000000000000000000.log"), [.. whole, .. torn.AsSpan(0, torn.Length - 3)]);

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        for (var restart = 0; restart < 2; restart++)
        {
            await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
            {
                // A read opens partition 0's log (Metadata does not open logs): recovery cuts the torn tail.
                Assert.Equal(0, (await FetchAsync(client, currentLeaderEpoch: -1, offset: 0)).ErrorCode);
                var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }] });
                Assert.Equal([(0, 1), (1, 0)], metadata.Topics.Single().Partitions.Select(p => (p.PartitionIndex, p.LeaderEpoch)).Order());
            }

            Assert.Equal(0, await broker.StopAsync());
            await broker.RestartAsync();
        }

        Assert.Equal("0\n2\n0 0\n1 1\n", await File.ReadAllTextAsync(Path.Combine(partitionDir, "leader-epoch-checkpoint")));
    }

    private static async Task AssertEpochAsync(KafkaTestClient client, BrokerProcess broker, long expectedEnd)
    {
        // The first request is a consumer still on the old epoch: the log is opened (and recovered)
        // for it, and it is fenced with the new epoch. (Metadata answers from the metadata image
        // without opening logs; the bump reaches it once the log is open.)
        var stale = await FetchAsync(client, currentLeaderEpoch: 0, offset: 0);
        Assert.Equal(((short)ErrorCode.FencedLeaderEpoch, 1), (stale.ErrorCode, stale.CurrentLeader.LeaderEpoch));
        var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = Topic }] });
        Assert.True(metadata.Topics.Single().Partitions.Single().LeaderEpoch == 1, broker.Output);

        // The old epoch ends where recovery cut the log; a client still on it is fenced.
        var epochs = await client.SendAsync<OffsetForLeaderEpochResponse>(ApiKey.OffsetForLeaderEpoch, 4, new OffsetForLeaderEpochRequest
        {
            ReplicaId = -1,
            Topics =
            [
                new()
                {
                    Topic = Topic,
                    Partitions =
                    [
                        new() { Partition = 0, CurrentLeaderEpoch = 1, LeaderEpoch = 0 },
                        new() { Partition = 0, CurrentLeaderEpoch = 0, LeaderEpoch = 0 },
                        new() { Partition = 0, CurrentLeaderEpoch = 2, LeaderEpoch = 0 },
                    ],
                },
            ],
        });
        Assert.Equal(
            [(0, 0, expectedEnd), ((int)ErrorCode.FencedLeaderEpoch, -1, -1L), ((int)ErrorCode.UnknownLeaderEpoch, -1, -1L)],
            epochs.Topics.Single().Partitions.Select(p => ((int)p.ErrorCode, p.LeaderEpoch, p.EndOffset)));

        var fenced = await FetchAsync(client, currentLeaderEpoch: 0, offset: 0);
        Assert.Equal((short)ErrorCode.FencedLeaderEpoch, fenced.ErrorCode); // 74
        Assert.Equal((1, 1), (fenced.CurrentLeader.LeaderId, fenced.CurrentLeader.LeaderEpoch));
        Assert.Equal((short)ErrorCode.UnknownLeaderEpoch, (await FetchAsync(client, currentLeaderEpoch: 2, offset: 0)).ErrorCode); // 75
        var current = await FetchAsync(client, currentLeaderEpoch: 1, offset: 0);
        Assert.Equal(0, current.ErrorCode);
        Assert.Equal(0, new RecordBatch(current.Records!.Value).BaseOffset);
    }

    private static async Task<(short Error, long BaseOffset)> ProduceAsync(KafkaTestClient client, byte[] batch)
    {
        var response = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest
        {
            Acks = -1,
            TimeoutMs = 10000,
            TopicData = [new() { Name = Topic, PartitionData = [new() { Index = 0, Records = batch }] }],
        });
        var p = response.Responses.Single().PartitionResponses.Single();
        return (p.ErrorCode, p.BaseOffset);
    }

    private static async Task<FetchResponse.PartitionData> FetchAsync(KafkaTestClient client, int currentLeaderEpoch, long offset)
    {
        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = Topic, Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20, CurrentLeaderEpoch = currentLeaderEpoch }] }],
        });
        return fetch.Responses.Single().Partitions.Single();
    }
}
