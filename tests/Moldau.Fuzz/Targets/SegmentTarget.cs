using Moldau.Protocol.Records;
using Moldau.Storage;

namespace Moldau.Fuzz.Targets;

/// <summary>
/// Segment recovery: the input's first byte says whether the log dir was closed cleanly (bit 0),
/// the rest is written as <c>00000000000000000000.log</c> of a partition, which is then opened
/// (recovered) and read from its start to its end, batch after batch, as a consumer would. An
/// <see cref="IOException"/> is expected (the broker takes the partition offline with one log
/// line); a read that does not move forward, or whose batches' offsets go backwards, is a finding
/// (a consumer would spin there, or see offsets twice).
/// </summary>
internal sealed class SegmentTarget : FuzzTarget
{
    public override string Name => "segment";

    public override string Description => "PartitionLog.Open (recovery) of a segment, then a read of the whole log";

    public override bool IsExpected(Exception e) => e is IOException;

    public override void Run(ReadOnlyMemory<byte> input)
    {
        if (input.Length == 0)
        {
            return;
        }

        var dir = ScratchDirectory.Fresh("segment");
        File.WriteAllBytes(Path.Combine(dir, "00000000000000000000.log"), input[1..].ToArray());
        var options = new PartitionLogOptions { DirectIo = false, SyncBeforeAck = false, CleanShutdown = (input.Span[0] & 1) != 0 };
        using var log = PartitionLog.Open(dir, options, TimeProvider.System);
        ReadAll(log);
    }

    /// <summary>Reads <paramref name="log"/> from its start to its end; throws a finding when a read stalls.</summary>
    public static void ReadAll(PartitionLog log)
    {
        var offset = log.LogStartOffset;
        var end = log.LogEndOffset;
        while (offset < end)
        {
            var bytes = log.Read(offset, 1 << 20, minOneBatch: true, end);
            if (bytes.Length == 0)
            {
                return;
            }

            var next = offset;
            var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: false);
            var first = true;
            while (batches.MoveNext())
            {
                var batch = new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength));
                if (!first && batch.BaseOffset < next)
                {
                    throw new FuzzFinding($"a read at offset {offset} returned a batch at {batch.BaseOffset} after one that ends at {next - 1}: offsets go backwards");
                }

                first = false;
                next = Math.Max(next, batch.LastOffset + 1);
            }

            if (next <= offset)
            {
                throw new FuzzFinding($"a read at offset {offset} (log end {end}) returned {bytes.Length} bytes that end before it: a consumer would spin");
            }

            offset = next;
        }
    }

    public override IEnumerable<(string Name, byte[] Bytes)> Seeds()
    {
        var first = SeedMessages.Batch();
        var second = SeedMessages.Batch(CompressionType.Gzip);
        RecordBatch.SetBaseOffset(second, 2);
        byte[] both = [.. first, .. second];
        yield return ("two-batches-unclean", [0, .. both]);
        yield return ("two-batches-clean", [1, .. both]);
        yield return ("torn-tail", [0, .. both[..^7]]);
    }
}
