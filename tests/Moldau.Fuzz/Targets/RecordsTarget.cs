using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// The records of one produced partition: the first byte's bit 0 says whether the harness fixes
/// the batch's CRC (so mutations get past the check), bit 1 whether the topic is compacted (keys
/// required), the rest is the partition's records field. It goes through
/// <see cref="RecordBatchValidator.Validate"/> as the Produce handler calls it. A batch the
/// validator accepts is stored and served as it is, so from then on every reader trusts it: its
/// records must all read, as many as the header counts, with offset deltas 0..n-1. An accepted
/// batch that doesn't read is a finding (a poisoned partition).
/// </summary>
internal sealed class RecordsTarget : FuzzTarget
{
    public override string Name => "records";

    public override string Description => "RecordBatchValidator.Validate (as Produce calls it); an accepted batch must read whole";

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var records = input[1..].ToArray();
        if ((input.Span[0] & 1) != 0)
        {
            BatchCrc.FixAll(records);
        }

        var checks = new RecordChecks("fuzz", 0, RequireKeys: (input.Span[0] & 2) != 0);
        if (RecordBatchValidator.Validate(records, checks).Error != ErrorCode.None)
        {
            return;
        }

        var batch = new RecordBatch(records);
        var count = 0;
        try
        {
            foreach (var record in batch.GetRecords())
            {
                if (record.OffsetDelta != count)
                {
                    throw new FuzzFinding($"accepted batch: record {count} has offset delta {record.OffsetDelta}");
                }

                count++;
            }
        }
        catch (KafkaProtocolException e)
        {
            throw new FuzzFinding($"accepted batch does not read: record {count}: {e.Message}");
        }

        if (count != batch.RecordCount || batch.LastOffsetDelta != count - 1)
        {
            throw new FuzzFinding($"accepted batch: {count} records read, header counts {batch.RecordCount}, last offset delta {batch.LastOffsetDelta}");
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        foreach (var c in Enum.GetValues<CompressionType>().Where(c => (int)c <= 4))
        {
            yield return (c.ToString().ToLowerInvariant(), [1, .. SeedMessages.Batch(c)]);
        }
    }
}
