using System.Buffers.Binary;
using System.Text;
using Moldau.Protocol.Records;

namespace Moldau.Storage.Tests;

/// <summary>
/// A batch's base offset is not covered by its CRC: a batch whose offsets fall before the segment
/// or before the batch ahead of it (a negative base offset, found by the segment fuzz target) is
/// corruption, cut like a failed CRC, after a clean stop and after a crash alike.
/// </summary>
public sealed class BatchOffsetCorruptionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-offsets-" + Guid.NewGuid().ToString("N")[..10]);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private PartitionLog Open(bool clean) =>
        PartitionLog.Open(_dir, new PartitionLogOptions { SegmentBytes = 100_000, IndexIntervalBytes = 100, DirectIo = false, SyncBeforeAck = true, CleanShutdown = clean }, TimeProvider.System);

    private static byte[] Batch(int i) =>
        RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes($"record-{i}-" + new string('r', 60)), 1000 + i), new(null, Encoding.UTF8.GetBytes($"second-{i}"), 1000 + i)]);

    [Theory]
    [InlineData(true, -5L)]
    [InlineData(false, -5L)]
    [InlineData(true, long.MinValue)]
    [InlineData(false, long.MinValue)]
    [InlineData(true, 2L)]
    [InlineData(false, 2L)]
    public void ALastBatchWhoseBaseOffsetGoesBackIsCutAndItsOffsetsAreNotReused(bool clean, long baseOffset)
    {
        long end;
        using (var log = Open(clean: false))
        {
            for (var i = 0; i < 5; i++)
            {
                log.Append(Batch(i), 0);
            }

            log.Flush();
            end = log.LogEndOffset;
        }

        var path = Directory.GetFiles(_dir, "*.log").Single();
        var bytes = File.ReadAllBytes(path);
        var lastBatch = bytes.Length - Batch(4).Length;
        BinaryPrimitives.WriteInt64BigEndian(bytes.AsSpan(lastBatch), baseOffset);
        File.WriteAllBytes(path, bytes);

        using var reopened = Open(clean);
        Assert.True(reopened.RecoveryLostRecords);
        if (clean)
        {
            Assert.Contains($"{path} is corrupt at position {lastBatch}", reopened.CorruptionAfterCleanStop, StringComparison.Ordinal);
        }
        else
        {
            Assert.Equal(bytes.Length - lastBatch, reopened.RecoveredTruncatedBytes);
        }

        Assert.Equal(end, reopened.LogEndOffset);
        Assert.Equal(end, reopened.Append(Batch(5), 0).BaseOffset);

        // What is read back goes forward, batch after batch, up to the new batch.
        var next = 0L;
        while (next < reopened.LogEndOffset)
        {
            var read = reopened.Read(next, 1 << 20, minOneBatch: true, maxOffset: long.MaxValue).ToArray();
            Assert.NotEmpty(read);
            for (var at = 0; at < read.Length; at += (int)RecordBatch.DeclaredSize(read.AsSpan(at)))
            {
                var batch = new RecordBatch(read.AsMemory(at, (int)RecordBatch.DeclaredSize(read.AsSpan(at))));
                Assert.True(batch.BaseOffset >= next, $"batch at {at} starts at {batch.BaseOffset}, before {next}");
                next = batch.LastOffset + 1;
            }
        }

        Assert.Equal(end + 2, next);
    }
}
