using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

public sealed class LeaderEpochTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-epoch-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private string CheckpointPath => Path.Combine(_dir, LeaderEpochCache.FileName);

    private static byte[] Batch(int records) =>
        RecordBatchBuilder.Build(Enumerable.Range(0, records).Select(i => new RecordToWrite(null, new byte[10], 1000 + i)).ToList());

    private PartitionLog Open() =>
        PartitionLog.Open(_dir, new PartitionLogOptions { IndexIntervalBytes = 100, SyncBeforeAck = false }, TimeProvider.System);

    [Fact]
    public void KafkasCheckpointTextIsReadAndWrittenTheSameWay()
    {
        // As Kafka's LeaderEpochCheckpointFile writes it: version, count, "epoch startOffset" lines.
        const string kafka = "0\n3\n0 0\n2 100\n5 250\n";
        var entries = LeaderEpochCache.Parse(kafka);
        Assert.Equal([new(0, 0), new(2, 100), new(5, 250)], entries!);
        Assert.Equal(kafka, LeaderEpochCache.Format(entries!));
        Assert.Equal("0\n0\n", LeaderEpochCache.Format([]));
        Assert.Equal([new(7, 12)], LeaderEpochCache.Parse("0\r\n1\r\n7  12\r\n")!);
    }

    [Theory]
    [InlineData("")]
    [InlineData("1\n1\n0 0\n")]
    [InlineData("0\n2\n0 0\n")]
    [InlineData("0\n1\n0\n")]
    [InlineData("0\n1\nx 0\n")]
    [InlineData("0\nmany\n")]
    public void AMalformedCheckpointIsRefused(string text) => Assert.Null(LeaderEpochCache.Parse(text));

    [Fact]
    public void EndOffsetsFollowKafkasLookup()
    {
        var cache = LeaderEpochCache.InMemory([new(0, 0), new(2, 100), new(5, 250)]);
        Assert.Equal((5, 400L), cache.EndOffsetFor(5, 400)); // the newest epoch runs to the log end
        Assert.Equal((2, 250L), cache.EndOffsetFor(2, 400));
        Assert.Equal((2, 250L), cache.EndOffsetFor(4, 400)); // an epoch this log never had: the one before it
        Assert.Equal((0, 100L), cache.EndOffsetFor(1, 400));
        Assert.Equal((-1, -1L), cache.EndOffsetFor(6, 400)); // newer than any known
        Assert.Equal((-1, -1L), cache.EndOffsetFor(-1, 400));
        Assert.Equal((-1, -1L), LeaderEpochCache.InMemory().EndOffsetFor(0, 400));

        Assert.Equal(-1, LeaderEpochCache.InMemory([new(3, 10)]).EpochForOffset(9));
        Assert.Equal(0, cache.EpochForOffset(99));
        Assert.Equal(2, cache.EpochForOffset(100));
        Assert.Equal(5, cache.EpochForOffset(1000));
    }

    [Fact]
    public void AssignKeepsEntriesIncreasing()
    {
        var cache = LeaderEpochCache.InMemory();
        Assert.True(cache.Assign(0, 0));
        Assert.False(cache.Assign(0, 50)); // epoch 0 already started earlier
        Assert.False(cache.Assign(-1, 60));
        Assert.True(cache.Assign(3, 100));
        Assert.True(cache.Assign(4, 100)); // same start: epoch 3 held nothing
        Assert.Equal([new(0, 0), new(4, 100)], cache.Entries);
        Assert.True(cache.Assign(2, 40)); // going back drops what is no longer increasing
        Assert.Equal([new(0, 0), new(2, 40)], cache.Entries);
    }

    [Fact]
    public void TruncationDropsEntriesPastTheEndAndMovesTheFirstToTheStart()
    {
        var cache = LeaderEpochCache.InMemory([new(0, 0), new(2, 100), new(5, 250)]);
        Assert.False(cache.TruncateFromEnd(251));
        Assert.True(cache.TruncateFromEnd(250));
        Assert.Equal([new(0, 0), new(2, 100)], cache.Entries);

        Assert.True(cache.TruncateFromStart(120));
        Assert.Equal([new(2, 120)], cache.Entries);
        Assert.False(cache.TruncateFromStart(120));
        Assert.Equal((1, 120L), cache.EndOffsetFor(1, 300)); // older than any known: the first start
    }

    [Fact]
    public void EpochStartsAreCheckpointedBeforeTheirBatches()
    {
        using (var log = Open())
        {
            Assert.Equal("0\n0\n", File.ReadAllText(CheckpointPath)); // created on open, as Kafka does
            log.StartEpoch(0);
            log.Append(Batch(3), 0);
            log.Append(Batch(2), 0);
            Assert.Equal("0\n1\n0 0\n", File.ReadAllText(CheckpointPath));
            log.StartEpoch(1);
            Assert.Equal("0\n2\n0 0\n1 5\n", File.ReadAllText(CheckpointPath));
            log.Append(Batch(1), 1);
            log.Append(Batch(1), 3); // a batch of a newer epoch starts it
            Assert.Equal("0\n3\n0 0\n1 5\n3 6\n", File.ReadAllText(CheckpointPath));
            Assert.Equal((1, 6L), log.EndOffsetForEpoch(2));
            Assert.Equal((3, 7L), log.EndOffsetForEpoch(3));
            Assert.Equal(0, log.EpochForOffset(4));
            log.StartEpoch(2); // older than the newest: nothing changes
            Assert.Equal(3, log.LeaderEpochs.LatestEpoch);
        }

        using var reopened = Open();
        Assert.Equal([new(0, 0), new(1, 5), new(3, 6)], reopened.LeaderEpochs.Entries);
    }

    [Fact]
    public void EpochsPastARecoveredTornTailAreDropped()
    {
        using (var log = Open())
        {
            log.Append(Batch(3), 0);
            log.Append(Batch(2), 4);
        }

        // The second batch is torn: epoch 4 started at offset 3, which is now the log end.
        var segment = Path.Combine(_dir, "00000000000000000000.log");
        var bytes = File.ReadAllBytes(segment);
        File.WriteAllBytes(segment, bytes.AsSpan(0, bytes.Length - 7).ToArray());
        // A power loss leaves no producer snapshot (one is written only by a clean close, and it
        // names the log end), and may lose the index entries written since the last sync.
        foreach (var proof in Directory.GetFiles(_dir, "*.snapshot").Concat(Directory.GetFiles(_dir, "*.index")))
        {
            File.Delete(proof);
        }

        using var reopened = Open();
        Assert.True(reopened.RecoveredTruncatedBytes > 0);
        Assert.Equal(3, reopened.LogEndOffset);
        Assert.Equal([new(0, 0)], reopened.LeaderEpochs.Entries);
        Assert.Equal("0\n1\n0 0\n", File.ReadAllText(CheckpointPath));
    }

    [Fact]
    public void AKafkaWrittenCheckpointIsUsedAndAMissingOneIsRebuiltFromTheBatches()
    {
        Directory.CreateDirectory(_dir);
        var first = RecordBatchBuilder.Build([new(null, new byte[5], 1), new(null, new byte[5], 2)], baseOffset: 0, partitionLeaderEpoch: 3);
        var second = RecordBatchBuilder.Build([new(null, new byte[5], 3)], baseOffset: 2, partitionLeaderEpoch: 6);
        File.WriteAllBytes(Path.Combine(_dir, "00000000000000000000.log"), [.. first, .. second]);

        // Kafka's own file, with an entry beyond the log end that a crash left behind.
        File.WriteAllText(CheckpointPath, "0\n3\n3 0\n6 2\n7 3\n");
        using (var log = Open())
        {
            Assert.Equal([new(3, 0), new(6, 2)], log.LeaderEpochs.Entries);
            Assert.Equal((3, 2L), log.EndOffsetForEpoch(5));
            Assert.Equal((6, 3L), log.EndOffsetForEpoch(6));
            Assert.Equal((2, 0L), log.EndOffsetForEpoch(2));
        }

        File.Delete(CheckpointPath);
        using (var log = Open())
        {
            Assert.Equal([new(3, 0), new(6, 2)], log.LeaderEpochs.Entries);
            Assert.Equal("0\n2\n3 0\n6 2\n", File.ReadAllText(CheckpointPath));
        }

        File.WriteAllText(CheckpointPath, "garbage");
        using var rebuilt = Open();
        Assert.Equal([new(3, 0), new(6, 2)], rebuilt.LeaderEpochs.Entries);
    }

    [Fact]
    public void MovingTheLogStartMovesTheFirstEpoch()
    {
        using var log = Open();
        log.Append(Batch(3), 0);
        log.Append(Batch(3), 1);
        log.AdvanceLogStartOffset(4);
        Assert.Equal([new(1, 4)], log.LeaderEpochs.Entries);
        Assert.Equal("0\n1\n1 4\n", File.ReadAllText(CheckpointPath));
    }
}
