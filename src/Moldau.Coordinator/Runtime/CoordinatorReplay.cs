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
    public static void Records(ICoordinatorLog log, Action<ReadOnlyMemory<byte>, ReadOnlyMemory<byte>?> apply, ILogger? logger, string topic) =>
        Records(log, (in CoordinatorRecordOrigin _, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value) => apply(key, value), null, logger, topic);

    /// <summary>
    /// Every record of <paramref name="log"/> with a key, in offset order, handed to
    /// <paramref name="apply"/> with its offset and its batch's producer; every transaction marker
    /// (a COMMIT or ABORT control record) handed to <paramref name="marker"/>, in the same order,
    /// as Kafka's coordinator loader does. Compressed batches are skipped (coordinators write
    /// uncompressed ones). A record that does not decode (<see cref="KafkaProtocolException"/>,
    /// from the batch or from <paramref name="apply"/>) ends that batch with one warning; the
    /// next goes on.
    /// </summary>
    public static void Records(ICoordinatorLog log, ReplayRecord apply, Action<long, short, bool>? marker, ILogger? logger, string topic)
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
                if (batch.Compression != CompressionType.None || (batch.IsControl && marker is null))
                {
                    continue;
                }

                try
                {
                    foreach (var r in batch.GetRecords())
                    {
                        if (batch.IsControl)
                        {
                            // A control batch of an older format or an unknown type is no marker: skipped, as Kafka does.
                            if (r.Key is { } ck && ControlRecordBatch.TypeOf(ck.Span) is { } type)
                            {
                                marker!(batch.ProducerId, batch.ProducerEpoch, type == ControlRecordType.Commit);
                            }

                            continue;
                        }

                        if (r.Key is { } k)
                        {
                            apply(new CoordinatorRecordOrigin(batch.BaseOffset + r.OffsetDelta, batch.ProducerId, batch.ProducerEpoch, batch.IsTransactional), k, r.Value);
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

    /// <summary>Applies one replayed record.</summary>
    /// <param name="origin">Its offset and its batch's producer.</param>
    /// <param name="key">The record's key.</param>
    /// <param name="value">Its value, null for a tombstone.</param>
    public delegate void ReplayRecord(in CoordinatorRecordOrigin origin, ReadOnlyMemory<byte> key, ReadOnlyMemory<byte>? value);
}
