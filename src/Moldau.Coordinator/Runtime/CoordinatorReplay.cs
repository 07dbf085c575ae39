using Microsoft.Extensions.Logging;
using Moldau.Protocol;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Runtime;

/// <summary>Reads a coordinator's partition back, record by record, for a shard's load.</summary>
public static class CoordinatorReplay
{
    /// <summary>
    /// Every record of <paramref name="log"/> with a key, in offset order, handed to
    /// <paramref name="apply"/> (uncompressed data batches; control and compressed ones are
    /// skipped). A record that does not decode (<see cref="KafkaProtocolException"/>, from the
    /// batch or from <paramref name="apply"/>) ends that batch with one warning; the next goes on.
    /// </summary>
    public static void Records(ICoordinatorLog log, Action<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>?> apply, ILogger? logger, string topic)
    {
        var offset = log.StartOffset;
        while (offset < log.EndOffset)
        {
            var bytes = log.Read(offset, 1 << 20);
            if (bytes.Length == 0)
            {
                return;
            }

            var before = offset;
            var batches = new RecordBatchEnumerator(bytes.Span, checkCrc: false);
            while (batches.MoveNext())
            {
                var batch = new RecordBatch(bytes.Slice(batches.CurrentStart, batches.CurrentLength));
                offset = batch.LastOffset + 1;
                if (batch.IsControl || batch.Compression != CompressionType.None)
                {
                    continue;
                }

                try
                {
                    foreach (var r in batch.GetRecords())
                    {
                        if (r.Key is { } k)
                        {
                            apply(k, r.Value);
                        }
                    }
                }
                catch (KafkaProtocolException e)
                {
                    logger?.LogWarning("{Topic} replay skipped the rest of the batch at offsets {First}..{Last} in {Log}: {Error}", topic, batch.BaseOffset, batch.LastOffset, log.Name, e.Message);
                }
            }

            if (offset <= before)
            {
                return;
            }
        }
    }
}
