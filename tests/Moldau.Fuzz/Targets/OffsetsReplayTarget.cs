using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Coordinator;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// The replay of a <c>__consumer_offsets</c> partition at start-up: the input's first byte says
/// whether the log dir was closed cleanly (bit 0: the segment is then trusted, CRCs unchecked, as
/// after a clean stop), the rest is written as the partition's segment, the log is opened and a
/// group coordinator starts on it (<see cref="OffsetsTopic.Replay"/> and the apply of each
/// entry). The broker does this while starting, so no exception may come out of it. Only opening
/// the log may fail, with <see cref="IOException"/> (the partition goes offline).
/// </summary>
internal sealed class OffsetsReplayTarget : FuzzTarget
{
    public override string Name => "offsets-replay";

    public override string Description => "OffsetsTopic.Replay through GroupCoordinator.Start of a __consumer_offsets segment";

    public override bool IsExpected(Exception e) => e is IOException;

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var dir = ScratchDirectory.Fresh(OffsetsTopic.Name + "-0");
        File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.log"), input[1..].ToArray());
        var options = new PartitionLogOptions { DirectIo = false, SyncBeforeAck = false, CleanShutdown = (input.Span[0] & 1) != 0 };
        using var log = PartitionLog.Open(dir, options, TimeProvider.System);
        var coordinator = new GroupCoordinator(new GroupCoordinatorOptions { OffsetsTopicPartitions = 1 }, _ => log, (_, _) => true, TimeProvider.System, NullLogger.Instance);
        try
        {
            coordinator.Start([0]);
        }
        finally
        {
            coordinator.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        var records = OffsetsRecordTarget.OffsetsRecords().Select(r => new RecordToWrite(r.Key, r.Value, 1_700_000_000_000)).ToList();
        var first = RecordBatchBuilder.Build(records);
        var second = RecordBatchBuilder.Build(records.Take(2).ToList(), baseOffset: records.Count);
        yield return ("two-batches-unclean", [0, .. first, .. second]);
        yield return ("two-batches-clean", [1, .. first, .. second]);

        // What the fuzzer found first: a batch with a valid CRC whose record runs past its end,
        // and a key whose group id runs past the key, each stopped the coordinator starting.
        var overrun = RecordBatchBuilder.Build(records.Take(1).ToList());
        overrun[RecordBatch.HeaderSize] = 0x7E;
        BinaryPrimitives.WriteUInt32BigEndian(overrun.AsSpan(RecordBatch.CrcOffset), Crc32C.Compute(overrun.AsSpan(RecordBatch.AttributesOffset)));
        yield return ("record-past-batch-end", [0, .. overrun, .. second]);
        var badKey = RecordBatchBuilder.Build([new RecordToWrite([0, 1, 0x7F, 0xFF], [0, 3], 1)]);
        yield return ("key-past-its-end", [0, .. badKey, .. second]);
    }
}
