using Moldau.Protocol.Records;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// The records of one produced partition: the validator's verdict, then, for a batch it accepts,
/// every record read as the broker reads them later (decompressed when the batch is compressed:
/// ListOffsets by time, compaction and the coordinators' replay all do). The input is the
/// partition's records field. Findings go to pending/: the records area owns this code.
/// </summary>
internal sealed class RecordsTarget : FuzzTarget
{
    public override string Name => "records";

    public override string Description => "RecordBatchValidator.ValidateProduce, then every record of an accepted batch";

    public override bool FindingsArePending => true;

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (RecordBatchValidator.ValidateProduce(input.Span) != Moldau.Protocol.ErrorCode.None)
        {
            return;
        }

        var batch = new RecordBatch(input);
        foreach (var record in batch.GetRecords())
        {
            _ = record.Headers.Count;
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (var c in Enum.GetValues<CompressionType>().Where(c => (int)c <= 4))
        {
            yield return (c.ToString().ToLowerInvariant(), SeedMessages.Batch(c));
        }
    }
}
