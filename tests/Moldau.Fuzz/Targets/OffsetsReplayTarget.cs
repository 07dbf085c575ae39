using Moldau.Coordinator;
using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// The replay of a <c>__consumer_offsets</c> partition at start-up: the input is written as the
/// partition's segment, the log is opened (recovered) and <see cref="OffsetsTopic.Replay"/> is
/// read through. The broker calls it while starting, so no exception may come out of it: a
/// record that doesn't decode is skipped. Only opening the log may fail, with
/// <see cref="IOException"/> (the partition goes offline).
/// </summary>
internal sealed class OffsetsReplayTarget : FuzzTarget
{
    public override string Name => "offsets-replay";

    public override string Description => "OffsetsTopic.Replay of a __consumer_offsets segment";

    public override bool IsExpected(Exception e) => e is IOException;

    public override void Run(ReadOnlyMemory<byte> input)
    {
        var dir = ScratchDirectory.Fresh(OffsetsTopic.Name + "-0");
        File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.log"), input.ToArray());
        using var log = PartitionLog.Open(dir, new PartitionLogOptions { DirectIo = false, SyncBeforeAck = false }, TimeProvider.System);
        foreach (var entry in OffsetsTopic.Replay(log))
        {
            _ = entry;
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        var records = OffsetsRecordTarget.OffsetsRecords().Select(r => new RecordToWrite(r.Key, r.Value, 1_700_000_000_000)).ToList();
        var first = RecordBatchBuilder.Build(records);
        var second = RecordBatchBuilder.Build(records.Take(2).ToList(), baseOffset: records.Count);
        yield return ("two-batches", [.. first, .. second]);
    }
}
