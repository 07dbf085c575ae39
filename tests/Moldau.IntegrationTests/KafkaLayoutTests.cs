using System.Buffers.Binary;
using System.Text;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Metadata;
using Moldau.Protocol.Records;
using Moldau.Storage;
using Moldau.Storage.Metadata;
using CK = Confluent.Kafka;

namespace Moldau.IntegrationTests;

/// <summary>A data directory laid out as Apache Kafka lays it out opens and serves in Moldau.</summary>
public sealed class KafkaLayoutTests
{
    private static readonly Uuid OrdersId = Uuid.NewRandom();
    private static readonly Uuid EventsId = Uuid.NewRandom();

    /// <summary>Writes a KRaft metadata log and partition logs, with the extra files Kafka leaves.</summary>
    private static byte[] LayOut(string dataDir)
    {
        using (var writer = new MetadataLogWriter(Path.Combine(dataDir, "__cluster_metadata-0"), TimeProvider.System))
        {
            writer.Append(
            [
                (FeatureLevelRecord.SpecApiKey, 0, new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 21 }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "orders", TopicId = OrdersId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = OrdersId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 3, PartitionEpoch = 5, Directories = [Uuid.NewRandom()] }.ToBytes(1)),
                (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 1, TopicId = OrdersId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0, PartitionEpoch = 0, Directories = [Uuid.NewRandom()] }.ToBytes(1)),
            ]);

            // A record type from a future Kafka and a version this code doesn't know: skipped.
            writer.Append([(999, 0, [1, 2, 3]), (TopicRecord.SpecApiKey, 7, [0, 0, 0])]);
            writer.Append(
            [
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "events", TopicId = EventsId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 0, new PartitionRecord { PartitionId = 0, TopicId = EventsId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0 }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "gone", TopicId = new Uuid(1, 2) }.ToBytes(0)),
                (RemoveTopicRecord.SpecApiKey, 0, new RemoveTopicRecord { TopicId = new Uuid(1, 2) }.ToBytes(0)),
            ]);
        }

        File.WriteAllText(Path.Combine(dataDir, "meta.properties"), "#\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=kafka-made-cluster\n");
        var orders = Path.Combine(dataDir, "orders-0");
        Directory.CreateDirectory(orders);
        var first = RecordBatchBuilder.Build([new(Encoding.UTF8.GetBytes("a"), Encoding.UTF8.GetBytes("one"), 1000), new(null, Encoding.UTF8.GetBytes("two"), 1001)], baseOffset: 0, partitionLeaderEpoch: 3);
        var second = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("three"), 1002)], baseOffset: 2, partitionLeaderEpoch: 3);
        var log = first.Concat(second).ToArray();
        File.WriteAllBytes(Path.Combine(orders, "00000000000000000000.log"), log);

        // Kafka pre-allocates its indexes (zero-filled) and keeps checkpoints beside the segments.
        File.WriteAllBytes(Path.Combine(orders, "00000000000000000000.index"), new byte[10 * 1024 * 1024 / 1024]);
        File.WriteAllBytes(Path.Combine(orders, "00000000000000000000.timeindex"), new byte[12 * 1024]);
        File.WriteAllText(Path.Combine(orders, "leader-epoch-checkpoint"), "0\n1\n3 0\n");
        PartitionMetadataFile.Write(orders, OrdersId);
        return log;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task TopicsFromTheMetadataLogAndTheirLogsAreServed(bool cleanShutdownMarker)
    {
        var dataDir = BrokerProcess.NewDataDir();
        var log = LayOut(dataDir);
        if (cleanShutdownMarker)
        {
            // Kafka's marker: the segments and (zero-padded) indexes are then taken as they are.
            File.WriteAllText(Path.Combine(dataDir, ".kafka_cleanshutdown"), "{\"version\":0,\"brokerEpoch\":12}");
        }

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        await using var client = await KafkaTestClient.ConnectAsync(broker.Port);

        var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal("kafka-made-cluster", metadata.ClusterId);
        Assert.Equal(["events", "orders"], metadata.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
        var orders = metadata.Topics.Single(t => t.Name == "orders");
        Assert.Equal(OrdersId, orders.TopicId);
        Assert.Equal(2, orders.Partitions.Count);
        Assert.Equal(3, orders.Partitions.Single(p => p.PartitionIndex == 0).LeaderEpoch);

        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 16, new FetchRequest
        {
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { TopicId = OrdersId, Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        var p = fetch.Responses.Single().Partitions.Single();
        Assert.Equal((0, 3L), (p.ErrorCode, p.HighWatermark));
        Assert.Equal(log, p.Records!.Value.ToArray());

        // Appends continue after what Kafka wrote; the partition without a directory gets one.
        var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("four"), 1003)]);
        var produce = await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest
        {
            Acks = -1,
            TopicData = [new() { Name = "orders", PartitionData = [new() { Index = 0, Records = batch }, new() { Index = 1, Records = batch }] }],
        });
        Assert.Equal([3L, 0L], produce.Responses.Single().PartitionResponses.Select(r => r.BaseOffset));
        Assert.Equal(OrdersId, PartitionMetadataFile.Read(Path.Combine(dataDir, "orders-1")));

        var described = await client.SendAsync<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest { Topics = [new() { Name = "gone" }, new() { Name = "events" }] });
        Assert.Equal([("events", (short)0), ("gone", (short)ErrorCode.UnknownTopicOrPartition)], described.Topics.Select(t => (t.Name!, t.ErrorCode)));
    }

    [Fact]
    public async Task TopicsKnownOnlyFromAKafkaSnapshotAreServed()
    {
        // Kafka deleted the segments its snapshot covers: the topic "old" is only in the
        // snapshot ending at offset 100, "new" in the segment that follows it.
        var dataDir = BrokerProcess.NewDataDir();
        var metadataDir = Path.Combine(dataDir, "__cluster_metadata-0");
        Directory.CreateDirectory(metadataDir);
        static byte[] Control(short type, long offset)
        {
            var key = new byte[4];
            System.Buffers.Binary.BinaryPrimitives.WriteInt16BigEndian(key.AsSpan(2), type);
            return RecordBatchBuilder.Build([new(key, [0, 0, 0], 1)], baseOffset: offset, attributes: 0x20);
        }

        static byte[] Data(long offset, params (short Type, short Version, byte[] Body)[] records) =>
            RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(null, MetadataLogReader.Frame(r.Type, r.Version, r.Body), 1)).ToList(), baseOffset: offset);

        var oldId = new Uuid(11, 12);
        var newId = new Uuid(13, 14);
        var snapshot = Data(
            1,
            (FeatureLevelRecord.SpecApiKey, 0, new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 21 }.ToBytes(0)),
            (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "old", TopicId = oldId }.ToBytes(0)),
            (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = oldId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 2 }.ToBytes(1)));
        await File.WriteAllBytesAsync(Path.Combine(metadataDir, "00000000000000000100-0000000003.checkpoint"), [.. Control(3, 0), .. snapshot, .. Control(4, 4)]);
        var segment = Data(
            100,
            (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "new", TopicId = newId }.ToBytes(0)),
            (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = newId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 0 }.ToBytes(1)));
        await File.WriteAllBytesAsync(Path.Combine(metadataDir, "00000000000000000100.log"), segment);
        File.WriteAllText(Path.Combine(dataDir, "meta.properties"), "#\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=kafka-made-cluster\n");

        await using var broker = await BrokerProcess.StartAsync(dataDir);
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
            Assert.Equal(["new", "old"], metadata.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
            Assert.Equal(oldId, metadata.Topics.Single(t => t.Name == "old").TopicId);
            Assert.Equal(2, metadata.Topics.Single(t => t.Name == "old").Partitions.Single().LeaderEpoch);

            // A topic made now is appended after the segment, so a restart keeps all three.
            var created = await client.SendAsync<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest { Topics = [new() { Name = "made", NumPartitions = 1, ReplicationFactor = 1 }] });
            Assert.Equal(0, created.Topics.Single().ErrorCode);
        }

        Assert.Equal(0, await broker.StopAsync());
        var made = MetadataLogReader.ReadAll(metadataDir).Single(r => r.RecordType == TopicRecord.SpecApiKey && KafkaMessageExtensions.Decode<TopicRecord>(r.Body, r.RecordVersion).Name == "made");
        Assert.True(made.Offset >= 102, $"the new topic's record went to offset {made.Offset}, inside what the snapshot covers");
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var after = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.Equal(["made", "new", "old"], after.Topics.Select(t => t.Name).Order(StringComparer.Ordinal));
    }

    [Fact]
    public async Task ARestartKeepsTopicsIdsAndRecords()
    {
        await using var broker = await BrokerProcess.StartAsync();
        Uuid id;
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var metadata = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = [new() { Name = "kept" }], AllowAutoTopicCreation = true });
            id = metadata.Topics.Single().TopicId;
            var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes("x"), 1)]);
            await client.SendAsync<ProduceResponse>(ApiKey.Produce, 11, new ProduceRequest { Acks = 1, TopicData = [new() { Name = "kept", PartitionData = [new() { Index = 0, Records = batch }] }] });
        }

        // A clean stop leaves Kafka's marker, the segment's indexes and a producer snapshot at the
        // log end; the next start takes the marker away (a crash after it means a full recovery).
        Assert.Equal(0, await broker.StopAsync());
        Assert.True(File.Exists(Path.Combine(broker.DataDir, ".kafka_cleanshutdown")));
        Assert.True(File.Exists(Path.Combine(broker.DataDir, "kept-0", "00000000000000000000.index")));
        Assert.True(File.Exists(Path.Combine(broker.DataDir, "kept-0", "00000000000000000000.timeindex")));
        Assert.True(File.Exists(Path.Combine(broker.DataDir, "kept-0", "00000000000000000001.snapshot")));
        Assert.Contains("kept 0 1\n", await File.ReadAllTextAsync(Path.Combine(broker.DataDir, "recovery-point-offset-checkpoint")), StringComparison.Ordinal);
        await broker.RestartAsync();
        await using var again = await KafkaTestClient.ConnectAsync(broker.Port);
        var after = await again.SendAsync<MetadataResponse>(ApiKey.Metadata, 12, new MetadataRequest { Topics = null });
        Assert.False(File.Exists(Path.Combine(broker.DataDir, ".kafka_cleanshutdown")));
        Assert.Equal(id, after.Topics.Single(t => t.Name == "kept").TopicId);
        var offsets = await again.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "kept", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] });
        Assert.Equal(1, offsets.Topics.Single().Partitions.Single().Offset);
    }

    // A partition with transactions, as Kafka 3.x/4.x leaves it (transaction version 1, so the
    // producer epoch stays the same across a producer's transactions):
    //
    //   segment 0                                              segment 9
    //   0-1  committer txn "c1","c2"   (seq 0-1)               9   committer txn "c4" (seq 3)
    //   2    aborter   txn "a1"        (seq 0)                 10  committer COMMIT
    //   3    committer txn "c3"        (seq 2)
    //   4    aborter   txn "a2"        (seq 1)
    //   5    committer COMMIT
    //   6    plain record "p1"         (no producer id)
    //   7    aborter   ABORT           -> .txnindex (2000, first 2, last 7, lso 8)
    //   8    hanging   txn "h1"        (seq 0), never ended: the snapshots carry it
    //
    // The high watermark is 11 and the last stable offset 8 until "hanging" ends.
    private static readonly Uuid PaymentsId = Uuid.NewRandom();
    private static readonly Uuid TxnStateId = Uuid.NewRandom();
    private const long Committer = 1000;
    private const long Aborter = 2000;
    private const long Hanging = 3000;
    private const int CoordinatorEpoch = 4;
    private const int TxnStatePartitions = 3;

    /// <summary>
    /// Lays out the metadata log, payments-0 and a __transaction_state of three partitions (a
    /// Kafka run with transaction.state.log.num.partitions=3). After a clean stop Kafka has written
    /// the snapshot at the log end and the marker; after a crash only the snapshot of the roll to
    /// segment 9 is there and the recovery point is 9.
    /// </summary>
    private static void LayOutTransactions(string dataDir, bool cleanShutdown, long hangingStart, int hangingTimeoutMs)
    {
        using (var writer = new MetadataLogWriter(Path.Combine(dataDir, "__cluster_metadata-0"), TimeProvider.System))
        {
            var records = new List<(short, short, byte[])>
            {
                (FeatureLevelRecord.SpecApiKey, 0, new FeatureLevelRecord { Name = "metadata.version", FeatureLevel = 21 }.ToBytes(0)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "payments", TopicId = PaymentsId }.ToBytes(0)),
                (PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = 0, TopicId = PaymentsId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = 2, PartitionEpoch = 2, Directories = [Uuid.NewRandom()] }.ToBytes(1)),
                (TopicRecord.SpecApiKey, 0, new TopicRecord { Name = "__transaction_state", TopicId = TxnStateId }.ToBytes(0)),
            };
            for (var p = 0; p < TxnStatePartitions; p++)
            {
                records.Add((PartitionRecord.SpecApiKey, 1, new PartitionRecord { PartitionId = p, TopicId = TxnStateId, Replicas = [1], Isr = [1], Leader = 1, LeaderEpoch = CoordinatorEpoch, PartitionEpoch = CoordinatorEpoch, Directories = [Uuid.NewRandom()] }.ToBytes(1)));
            }

            writer.Append(records);
        }

        File.WriteAllText(Path.Combine(dataDir, "meta.properties"), "#\nnode.id=1\ndirectory.id=abc\nversion=1\ncluster.id=kafka-made-cluster\n");

        var t0 = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - 60_000;
        static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
        byte[] Txn(long offset, long pid, int seq, params string[] values) =>
            RecordBatchBuilder.Build([.. values.Select((v, i) => new RecordToWrite(null, Utf8(v), t0 + offset + i))], offset, pid, 0, seq, 0x10 /* transactional */, partitionLeaderEpoch: 2);
        byte[] Marker(long offset, long pid, ControlRecordType type)
        {
            var marker = ControlRecordBatch.Build(pid, 0, CoordinatorEpoch, type, t0 + offset);
            RecordBatch.SetBaseOffset(marker, offset);
            RecordBatch.SetPartitionLeaderEpoch(marker, 2);
            return marker;
        }

        // Kafka's markers carry the CRC over the header from the attributes on, so moving the base
        // offset and epoch (outside the CRC) keeps them valid.
        var segment0 = Concat(
            Txn(0, Committer, 0, "c1", "c2"),
            Txn(2, Aborter, 0, "a1"),
            Txn(3, Committer, 2, "c3"),
            Txn(4, Aborter, 1, "a2"),
            Marker(5, Committer, ControlRecordType.Commit),
            RecordBatchBuilder.Build([new(null, Utf8("p1"), t0 + 6)], 6, partitionLeaderEpoch: 2),
            Marker(7, Aborter, ControlRecordType.Abort),
            Txn(8, Hanging, 0, "h1"));
        var segment9 = Concat(Txn(9, Committer, 3, "c4"), Marker(10, Committer, ControlRecordType.Commit));

        var payments = Path.Combine(dataDir, "payments-0");
        Directory.CreateDirectory(payments);
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000000.log"), segment0);

        // The rolled segment: its offset index trimmed (no entry: under index.interval.bytes), its
        // time index trimmed to the final entry Kafka adds at the roll (max timestamp, relative offset).
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000000.index"), []);
        var timeEntry = new byte[12];
        BinaryPrimitives.WriteInt64BigEndian(timeEntry, t0 + 8);
        BinaryPrimitives.WriteInt32BigEndian(timeEntry.AsSpan(8), 8);
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000000.timeindex"), timeEntry);

        // Kafka's AbortedTxn (storage/.../log/AbortedTxn.java): version int16 0, producer id int64,
        // first offset int64, last offset int64, last stable offset int64, big-endian, 34 bytes.
        var aborted = new byte[34];
        BinaryPrimitives.WriteInt16BigEndian(aborted, 0);
        BinaryPrimitives.WriteInt64BigEndian(aborted.AsSpan(2), Aborter);
        BinaryPrimitives.WriteInt64BigEndian(aborted.AsSpan(10), 2);
        BinaryPrimitives.WriteInt64BigEndian(aborted.AsSpan(18), 7);
        BinaryPrimitives.WriteInt64BigEndian(aborted.AsSpan(26), 8);
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000000.txnindex"), aborted);

        File.WriteAllBytes(Path.Combine(payments, "00000000000000000009.log"), segment9);
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000009.index"), new byte[10 * 1024]);
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000009.timeindex"), new byte[12 * 1024]);

        // An empty transaction index, as Kafka leaves one it truncated (TransactionIndex.reset).
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000009.txnindex"), []);

        // The producer snapshot Kafka takes at the roll to segment 9, and at a clean stop the one
        // at the log end. "hanging" is open in both.
        File.WriteAllBytes(Path.Combine(payments, "00000000000000000009.snapshot"), ProducerSnapshot(
            (Committer, 0, 2, 3, 0, t0 + 5, CoordinatorEpoch, -1),
            (Aborter, 0, 1, 4, 0, t0 + 7, CoordinatorEpoch, -1),
            (Hanging, 0, 0, 8, 0, t0 + 8, -1, 8)));
        if (cleanShutdown)
        {
            File.WriteAllBytes(Path.Combine(payments, "00000000000000000011.snapshot"), ProducerSnapshot(
                (Hanging, 0, 0, 8, 0, t0 + 8, -1, 8),
                (Committer, 0, 3, 9, 0, t0 + 10, CoordinatorEpoch, -1),
                (Aborter, 0, 1, 4, 0, t0 + 7, CoordinatorEpoch, -1)));
        }

        File.WriteAllText(Path.Combine(payments, "leader-epoch-checkpoint"), "0\n1\n2 0\n");
        PartitionMetadataFile.Write(payments, PaymentsId);

        // __transaction_state: each id's history on the partition Kafka picks for it.
        var history = new Dictionary<int, List<byte[]>>();
        void Write(string id, long pid, int timeoutMs, byte status, bool withPartition, long start, long updated, bool flexible = false)
        {
            var p = TxnStatePartition(id);
            if (!history.TryGetValue(p, out var batches))
            {
                history[p] = batches = [];
            }

            var offset = batches.Count;
            var partition = withPartition ? ("payments", 0) : ((string, int)?)null;
            var value = flexible ? TxnLogValueV1(pid, 0, timeoutMs, status, partition, updated, start) : TxnLogValue(pid, 0, timeoutMs, status, partition, status == 0, updated, start);
            batches.Add(RecordBatchBuilder.Build([new(TxnLogKey(id), value, updated)], offset, partitionLeaderEpoch: CoordinatorEpoch));
        }

        // Kafka's states: 0 Empty, 1 Ongoing, 2 PrepareCommit, 3 PrepareAbort, 4 CompleteCommit, 5 CompleteAbort.
        Write("committer", Committer, 60_000, 0, false, -1, t0 - 1000);
        Write("committer", Committer, 60_000, 1, true, t0, t0);
        Write("committer", Committer, 60_000, 2, true, t0, t0 + 5);
        Write("committer", Committer, 60_000, 4, false, t0, t0 + 5);

        // The second transaction after an upgrade to transaction.version 2: value version 1 (and a shorter timeout).
        Write("committer", Committer, 45_000, 1, true, t0 + 9, t0 + 9, flexible: true);
        Write("committer", Committer, 45_000, 2, true, t0 + 9, t0 + 10, flexible: true);
        Write("committer", Committer, 45_000, 4, false, t0 + 9, t0 + 10, flexible: true);
        Write("aborter", Aborter, 60_000, 0, false, -1, t0 - 1000);
        Write("aborter", Aborter, 60_000, 1, true, t0 + 2, t0 + 2);
        Write("aborter", Aborter, 60_000, 3, true, t0 + 2, t0 + 7);
        Write("aborter", Aborter, 60_000, 5, false, t0 + 2, t0 + 7);
        Write("hanging", Hanging, hangingTimeoutMs, 0, false, -1, hangingStart - 1000);
        Write("hanging", Hanging, hangingTimeoutMs, 1, true, hangingStart, hangingStart);

        var recoveryPoints = new List<string> { $"payments 0 {(cleanShutdown ? 11 : 9)}" };
        for (var p = 0; p < TxnStatePartitions; p++)
        {
            var dir = Path.Combine(dataDir, $"__transaction_state-{p}");
            Directory.CreateDirectory(dir);
            var batches = history.GetValueOrDefault(p) ?? [];
            File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.log"), Concat([.. batches]));
            File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.index"), new byte[10 * 1024]);
            File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.timeindex"), new byte[12 * 1024]);
            PartitionMetadataFile.Write(dir, TxnStateId);
            if (cleanShutdown)
            {
                // A clean stop snapshots every partition's producers at its log end: none here.
                File.WriteAllBytes(Path.Combine(dir, $"{batches.Count:D20}.snapshot"), ProducerSnapshot());
            }

            recoveryPoints.Add($"__transaction_state {p} {(cleanShutdown ? batches.Count : 0)}");
        }

        File.WriteAllText(Path.Combine(dataDir, "recovery-point-offset-checkpoint"), $"0\n{recoveryPoints.Count}\n{string.Join("\n", recoveryPoints)}\n");
        if (cleanShutdown)
        {
            File.WriteAllText(Path.Combine(dataDir, ".kafka_cleanshutdown"), "{\"version\":0,\"brokerEpoch\":12}");
        }
    }

    private static byte[] Concat(params byte[][] parts) => [.. parts.SelectMany(p => p)];

    /// <summary>
    /// A producer snapshot in Kafka's v1 layout (ProducerStateManager): version int16 1, CRC-32C
    /// uint32 of everything after it, then an int32 count of 46-byte entries: producer id int64,
    /// epoch int16, last sequence int32, last offset int64, offset delta int32, timestamp int64,
    /// coordinator epoch int32, current transaction's first offset int64 (-1 for none).
    /// </summary>
    private static byte[] ProducerSnapshot(params (long Pid, short Epoch, int LastSeq, long LastOffset, int Delta, long Timestamp, int CoordinatorEpoch, long TxnFirstOffset)[] entries)
    {
        var bytes = new byte[2 + 4 + 4 + (46 * entries.Length)];
        BinaryPrimitives.WriteInt16BigEndian(bytes, 1);
        BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(6), entries.Length);
        var at = 10;
        foreach (var e in entries)
        {
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(at), e.Pid);
            BinaryPrimitives.WriteInt16BigEndian(bytes.AsSpan(at + 8), e.Epoch);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(at + 10), e.LastSeq);
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(at + 14), e.LastOffset);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(at + 22), e.Delta);
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(at + 26), e.Timestamp);
            BinaryPrimitives.WriteInt32BigEndian(bytes.AsSpan(at + 34), e.CoordinatorEpoch);
            BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(at + 38), e.TxnFirstOffset);
            at += 46;
        }

        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(2), Crc32C(bytes.AsSpan(6)));
        return bytes;
    }

    /// <summary>CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: slow and independent of Moldau's.</summary>
    private static uint Crc32C(ReadOnlySpan<byte> data)
    {
        var crc = 0xFFFFFFFFu;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++)
            {
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
            }
        }

        return ~crc;
    }

    /// <summary>Kafka's partition for a transactional id: abs(String.hashCode) mod the partition count.</summary>
    private static int TxnStatePartition(string id)
    {
        var h = 0;
        foreach (var c in id)
        {
            h = unchecked((31 * h) + c);
        }

        return (h == int.MinValue ? 0 : Math.Abs(h)) % TxnStatePartitions;
    }

    /// <summary>A __transaction_state key: version int16 0, then the id as a string (int16 length, UTF-8).</summary>
    private static byte[] TxnLogKey(string id)
    {
        var utf8 = Encoding.UTF8.GetBytes(id);
        var key = new byte[4 + utf8.Length];
        BinaryPrimitives.WriteInt16BigEndian(key, 0);
        BinaryPrimitives.WriteInt16BigEndian(key.AsSpan(2), (short)utf8.Length);
        utf8.CopyTo(key, 4);
        return key;
    }

    /// <summary>
    /// A __transaction_state value of version 0: producer id int64, epoch int16, timeout int32,
    /// status int8, partitions (int32 count or -1 for null; per topic a string and an int32 array),
    /// last update int64, start int64.
    /// </summary>
    private static byte[] TxnLogValue(long pid, short epoch, int timeoutMs, byte status, (string Topic, int Partition)? partition, bool nullPartitions, long updated, long start)
    {
        var topic = partition is { } tp ? Encoding.UTF8.GetBytes(tp.Topic) : [];
        var size = 2 + 8 + 2 + 4 + 1 + 4 + (partition is null ? 0 : 2 + topic.Length + 4 + 4) + 8 + 8;
        var v = new byte[size];
        var at = 0;
        BinaryPrimitives.WriteInt16BigEndian(v.AsSpan(at), 0);
        BinaryPrimitives.WriteInt64BigEndian(v.AsSpan(at += 2), pid);
        BinaryPrimitives.WriteInt16BigEndian(v.AsSpan(at += 8), epoch);
        BinaryPrimitives.WriteInt32BigEndian(v.AsSpan(at += 2), timeoutMs);
        v[at += 4] = status;
        at += 1;
        BinaryPrimitives.WriteInt32BigEndian(v.AsSpan(at), nullPartitions ? -1 : partition is null ? 0 : 1);
        at += 4;
        if (partition is { } p)
        {
            BinaryPrimitives.WriteInt16BigEndian(v.AsSpan(at), (short)topic.Length);
            topic.CopyTo(v, at + 2);
            at += 2 + topic.Length;
            BinaryPrimitives.WriteInt32BigEndian(v.AsSpan(at), 1);
            BinaryPrimitives.WriteInt32BigEndian(v.AsSpan(at + 4), p.Partition);
            at += 8;
        }

        BinaryPrimitives.WriteInt64BigEndian(v.AsSpan(at), updated);
        BinaryPrimitives.WriteInt64BigEndian(v.AsSpan(at + 8), start);
        return v;
    }

    /// <summary>
    /// A __transaction_state value of version 1 (flexible, Kafka 4's transaction.version 2):
    /// the same fields with compact arrays and strings and tagged fields; tagged here are
    /// ClientTransactionVersion (tag 2, int16: 1, the client's) and a tag 9 from a future Kafka
    /// that a reader skips. PreviousProducerId and NextProducerId keep their default (-1), so
    /// Kafka leaves them out.
    /// </summary>
    private static byte[] TxnLogValueV1(long pid, short epoch, int timeoutMs, byte status, (string Topic, int Partition)? partition, long updated, long start)
    {
        var v = new List<byte>();
        void Int(long x, int bytes)
        {
            for (var i = bytes - 1; i >= 0; i--)
            {
                v.Add((byte)(x >> (8 * i)));
            }
        }

        Int(1, 2);
        Int(pid, 8);
        Int(epoch, 2);
        Int(timeoutMs, 4);
        v.Add(status);
        if (partition is { } p)
        {
            var topic = Encoding.UTF8.GetBytes(p.Topic);
            v.Add(2); // one topic (compact: N + 1)
            v.Add((byte)(topic.Length + 1));
            v.AddRange(topic);
            v.Add(2); // one partition
            Int(p.Partition, 4);
            v.Add(0); // the entry's tagged fields
        }
        else
        {
            v.Add(1); // an empty array
        }

        Int(updated, 8);
        Int(start, 8);
        v.Add(2); // two tagged fields, by tag
        v.AddRange([2, 2]);
        Int(1, 2);
        v.AddRange([9, 3, 0xAB, 0xCD, 0xEF]);
        return [.. v];
    }

    /// <summary>
    /// Kafka's data directory with committed and aborted transactions, a hanging one carried by the
    /// producer snapshots and Ongoing in __transaction_state, read under read_committed. The hanging
    /// transaction is either ended by an admin abort (WriteTxnMarkers, as kafka-transactions.sh
    /// abort sends it, after checking the LSO holds at its first offset across a clean restart) or,
    /// being past its timeout, by the coordinator once it has loaded __transaction_state (as Kafka's
    /// coordinator leaves an Ongoing transaction to its timeout at load).
    /// </summary>
    [Theory]
    [InlineData(true, false)]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public async Task KafkaTransactionsAreReadCommittedAndTheHangingOneEnds(bool cleanShutdown, bool endByTimeout)
    {
        var dataDir = BrokerProcess.NewDataDir();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        LayOutTransactions(dataDir, cleanShutdown, hangingStart: endByTimeout ? now - 120_000 : now, hangingTimeoutMs: endByTimeout ? 60_000 : 900_000);
        await using var broker = await BrokerProcess.StartAsync(dataDir, new Dictionary<string, string> { ["transaction.abort.timed.out.transaction.cleanup.interval.ms"] = "500" });

        if (!endByTimeout)
        {
            await AssertHangingAsync(broker);
            Assert.Equal(0, await broker.StopAsync());
            await broker.RestartAsync();
            await AssertHangingAsync(broker);

            await using var admin = await KafkaTestClient.ConnectAsync(broker.Port);
            var producers = await admin.SendAsync<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest { Topics = [new() { Name = "payments", PartitionIndexes = [0] }] });
            var hanging = producers.Topics.Single().Partitions.Single().ActiveProducers.Single(p => p.ProducerId == Hanging);
            var written = await admin.SendAsync<WriteTxnMarkersResponse>(ApiKey.WriteTxnMarkers, 1, new WriteTxnMarkersRequest
            {
                Markers = [new() { ProducerId = Hanging, ProducerEpoch = (short)hanging.ProducerEpoch, CoordinatorEpoch = hanging.CoordinatorEpoch, TransactionResult = false, Topics = [new() { Name = "payments", PartitionIndexes = [0] }] }],
            });
            Assert.Equal(0, written.Markers.Single().Topics.Single().Partitions.Single().ErrorCode);
        }

        var (marker, epoch) = await AssertEndedAsync(broker, waitFor: endByTimeout);
        Assert.Equal(endByTimeout ? (CoordinatorEpoch, (short)1) : (-1, (short)0), (marker, epoch));

        // The coordinator loaded both value versions. After an admin abort it still has "hanging"
        // Ongoing (as Kafka's: it learns nothing of the marker) until the timeout aborts it again.
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var described = await client.SendAsync<DescribeTransactionsResponse>(ApiKey.DescribeTransactions, 0, new DescribeTransactionsRequest { TransactionalIds = ["hanging", "committer", "aborter"] });
            Assert.Equal(
                [("aborter", "CompleteAbort", 0, 60_000), ("committer", "CompleteCommit", 0, 45_000), ("hanging", endByTimeout ? "CompleteAbort" : "Ongoing", endByTimeout ? 1 : 0, endByTimeout ? 60_000 : 900_000)],
                described.TransactionStates.Select(t => (t.TransactionalId, t.TransactionState, (int)t.ProducerEpoch, t.TransactionTimeoutMs)).OrderBy(t => t.TransactionalId, StringComparer.Ordinal));
        }

        Assert.Equal(0, await broker.StopAsync());
        await broker.RestartAsync();
        await AssertEndedAsync(broker, waitFor: false);
    }

    private static readonly TimeSpan ClientTimeout = TimeSpan.FromSeconds(30);

    private static async Task<FetchResponse.PartitionData> FetchCommittedAsync(KafkaTestClient client, long offset)
    {
        var fetch = await client.SendAsync<FetchResponse>(ApiKey.Fetch, 12, new FetchRequest
        {
            MaxBytes = 1 << 20,
            IsolationLevel = 1,
            SessionEpoch = -1,
            Topics = [new() { Topic = "payments", Partitions = [new() { Partition = 0, FetchOffset = offset, PartitionMaxBytes = 1 << 20 }] }],
        });
        return fetch.Responses.Single().Partitions.Single();
    }

    private static List<RecordBatch> BatchesOf(ReadOnlyMemory<byte> bytes)
    {
        var list = new List<RecordBatch>();
        var at = 0;
        while (at < bytes.Length)
        {
            var batch = new RecordBatch(bytes[at..]);
            list.Add(new RecordBatch(bytes.Slice(at, batch.TotalSize)));
            at += batch.TotalSize;
        }

        return list;
    }

    /// <summary>While "hanging" is open: the LSO holds at 8, the aborter's transaction is reported, a read_committed consumer sees only what is committed below 8.</summary>
    private static async Task AssertHangingAsync(BrokerProcess broker)
    {
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var p = await FetchCommittedAsync(client, 0);
            Assert.Equal((0, 11L, 8L), (p.ErrorCode, p.HighWatermark, p.LastStableOffset));
            Assert.Equal([(Aborter, 2L)], p.AbortedTransactions!.Select(a => (a.ProducerId, a.FirstOffset)));
            var batches = BatchesOf(p.Records!.Value);
            Assert.Equal([0L, 2, 3, 4, 5, 6, 7], batches.Select(b => b.BaseOffset));

            // From inside the aborted transaction, past its marker, and at the LSO.
            Assert.Equal([(Aborter, 2L)], (await FetchCommittedAsync(client, 3)).AbortedTransactions!.Select(a => (a.ProducerId, a.FirstOffset)));
            Assert.Empty((await FetchCommittedAsync(client, 8)).AbortedTransactions!);

            var lso = await client.SendAsync<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, IsolationLevel = 1, Topics = [new() { Name = "payments", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] });
            Assert.Equal(8, lso.Topics.Single().Partitions.Single().Offset);

            var producers = await client.SendAsync<DescribeProducersResponse>(ApiKey.DescribeProducers, 0, new DescribeProducersRequest { Topics = [new() { Name = "payments", PartitionIndexes = [0] }] });
            Assert.Equal(
                [(Committer, 3, -1L, CoordinatorEpoch), (Aborter, 1, -1L, CoordinatorEpoch), (Hanging, 0, 8L, -1)],
                producers.Topics.Single().Partitions.Single().ActiveProducers.Select(a => (a.ProducerId, a.LastSequence, a.CurrentTxnStartOffset, a.CoordinatorEpoch)).OrderBy(a => a.ProducerId));
        }

        Assert.Equal(["c1", "c2", "c3", "p1"], ReadCommitted(broker));
        Assert.Equal(["c1", "c2", "a1", "c3", "a2", "p1", "h1", "c4"], Read(broker, CK.IsolationLevel.ReadUncommitted, 11));
    }

    /// <summary>Once "hanging" ended with an ABORT at 11: the LSO is the high watermark 12 and both aborted transactions are reported; returns the marker's coordinator and producer epochs.</summary>
    private static async Task<(int CoordinatorEpoch, short ProducerEpoch)> AssertEndedAsync(BrokerProcess broker, bool waitFor)
    {
        FetchResponse.PartitionData p;
        await using (var client = await KafkaTestClient.ConnectAsync(broker.Port))
        {
            var deadline = DateTime.UtcNow + ClientTimeout;
            while (true)
            {
                p = await FetchCommittedAsync(client, 0);
                if (!waitFor || p.LastStableOffset == 12 || DateTime.UtcNow > deadline)
                {
                    break;
                }

                await Task.Delay(200);
            }

            Assert.Equal((0, 12L, 12L), (p.ErrorCode, p.HighWatermark, p.LastStableOffset));
            Assert.Equal([(Aborter, 2L), (Hanging, 8L)], p.AbortedTransactions!.Select(a => (a.ProducerId, a.FirstOffset)).OrderBy(a => a.ProducerId));

            // A fetch reads one segment (as Kafka's does): the second one holds the new marker.
            Assert.Equal([0L, 2, 3, 4, 5, 6, 7, 8], BatchesOf(p.Records!.Value).Select(b => b.BaseOffset));
            p = await FetchCommittedAsync(client, 9);
            Assert.Equal([(Hanging, 8L)], p.AbortedTransactions!.Select(a => (a.ProducerId, a.FirstOffset)));
            Assert.Equal([9L, 10, 11], BatchesOf(p.Records!.Value).Select(b => b.BaseOffset));
        }

        Assert.Equal(["c1", "c2", "c3", "p1", "c4"], ReadCommitted(broker));
        var marker = BatchesOf(p.Records!.Value)[^1];
        Assert.True(marker.IsControl && marker.ProducerId == Hanging);
        var records = new List<(byte[] Key, byte[] Value)>();
        foreach (var r in marker.GetRecords())
        {
            records.Add((r.Key!.Value.ToArray(), r.Value!.Value.ToArray()));
        }

        var (key, value) = Assert.Single(records);
        Assert.Equal(ControlRecordType.Abort, ControlRecordBatch.TypeOf(key));
        return (ControlRecordBatch.CoordinatorEpochOf(value), marker.ProducerEpoch);
    }

    private static List<string> ReadCommitted(BrokerProcess broker)
    {
        using var consumer = new CK.ConsumerBuilder<CK.Ignore, string>(new CK.ConsumerConfig { BootstrapServers = broker.BootstrapServers, GroupId = "unused", IsolationLevel = CK.IsolationLevel.ReadCommitted }).Build();
        var end = consumer.QueryWatermarkOffsets(new CK.TopicPartition("payments", 0), ClientTimeout).High.Value;
        return Read(broker, CK.IsolationLevel.ReadCommitted, end);
    }

    /// <summary>What a consumer of the given isolation reads of payments-0 from the start until its end of partition (for read_committed, the LSO).</summary>
    private static List<string> Read(BrokerProcess broker, CK.IsolationLevel isolation, long expectedEnd)
    {
        using var consumer = new CK.ConsumerBuilder<CK.Ignore, string>(new CK.ConsumerConfig
        {
            BootstrapServers = broker.BootstrapServers,
            GroupId = "unused",
            EnableAutoCommit = false,
            EnablePartitionEof = true,
            IsolationLevel = isolation,
        }).Build();
        var tp = new CK.TopicPartition("payments", 0);
        consumer.Assign(new CK.TopicPartitionOffset(tp, CK.Offset.Beginning));
        var read = new List<string>();
        var deadline = DateTime.UtcNow + ClientTimeout;
        while (DateTime.UtcNow < deadline)
        {
            var r = consumer.Consume(TimeSpan.FromMilliseconds(500));
            if (r is null)
            {
                continue;
            }

            if (r.IsPartitionEOF)
            {
                Assert.Equal(expectedEnd, r.Offset.Value);
                return read;
            }

            read.Add(r.Message.Value);
        }

        Assert.Fail($"no end of partition within {ClientTimeout}; read {string.Join(",", read)}");
        return read;
    }
}
