using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Coordinator;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Broker.Tests;

/// <summary>
/// __consumer_offsets replay runs while the broker starts: a batch whose records don't decode
/// (found by the offsets-replay fuzz target) is skipped, and the records after it still count.
/// </summary>
public sealed class OffsetsTopicReplayTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"moldau-offsets-replay-{Guid.NewGuid():N}");

    public void Dispose()
    {
        if (Directory.Exists(_dir))
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_batch_whose_records_run_past_its_end_is_skipped_and_replay_goes_on()
    {
        // A batch with a valid CRC whose only record claims 60 bytes more than the batch holds.
        var bad = RecordBatchBuilder.Build([new RecordToWrite(OffsetsTopic.OffsetKey("g", "t", 0), OffsetsTopic.OffsetValue(new CommittedOffset(5, -1, "", 1)), 1)]);
        bad[RecordBatch.HeaderSize] = 0x7E; // zig-zag 63
        BinaryPrimitives.WriteUInt32BigEndian(bad.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(bad.AsSpan(RecordBatch.AttributesOffset)));
        var good = RecordBatchBuilder.Build([new RecordToWrite(OffsetsTopic.OffsetKey("g", "t", 1), OffsetsTopic.OffsetValue(new CommittedOffset(42, -1, "", 1)), 1)], baseOffset: 1);

        Directory.CreateDirectory(_dir);
        await File.WriteAllBytesAsync(Path.Combine(_dir, "00000000000000000000.log"), [.. bad, .. good]);
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { DirectIo = false, SyncBeforeAck = false }, TimeProvider.System);
        Assert.Equal(2, log.LogEndOffset);

        var entries = OffsetsTopic.Replay(log, NullLogger.Instance).ToList();

        var entry = Assert.IsType<OffsetsTopic.OffsetEntry>(Assert.Single(entries));
        Assert.Equal(1, entry.Partition);
        Assert.Equal(42, entry.Offset!.Offset);
    }

    [Fact]
    public async Task A_record_whose_key_does_not_decode_does_not_stop_the_coordinator_starting()
    {
        // Key version 1 (an offset commit) followed by a group id length past the key's end.
        var bad = RecordBatchBuilder.Build([new RecordToWrite([0, 1, 0x7F, 0xFF], [0, 3], 1)]);
        var good = RecordBatchBuilder.Build([new RecordToWrite(OffsetsTopic.OffsetKey("g", "t", 1), OffsetsTopic.OffsetValue(new CommittedOffset(42, -1, "", 1)), 1)], baseOffset: 1);
        Directory.CreateDirectory(_dir);
        await File.WriteAllBytesAsync(Path.Combine(_dir, "00000000000000000000.log"), [.. bad, .. good]);
        using var log = PartitionLog.Open(_dir, new PartitionLogOptions { DirectIo = false, SyncBeforeAck = false }, TimeProvider.System);

        var coordinator = new GroupCoordinator(new GroupCoordinatorOptions { OffsetsTopicPartitions = 1 }, _ => log, (_, _) => true, TimeProvider.System, NullLogger.Instance);
        coordinator.Start([0]);
        await coordinator.DisposeAsync();

        Assert.Single(OffsetsTopic.Replay(log));
    }
}
