using System.Text;
using System.Text.Json;

namespace Moldau.Cluster.Catalog;

/// <summary>
/// One idempotent producer's state in one partition, as Kafka keeps it: its epoch and its last five
/// batches (sequence range and offsets), so a retried batch is recognised and gets its offsets back.
/// Changed only by the commit transaction that holds the partition's row lock.
/// </summary>
internal sealed class ProducerState(short epoch)
{
    /// <summary>How many batches per producer and partition are remembered (Kafka's NUM_BATCHES_TO_RETAIN).</summary>
    public const int BatchesToRetain = 5;

    public short Epoch { get; private set; } = epoch;

    /// <summary>Oldest first.</summary>
    public List<(int FirstSeq, int LastSeq, long BaseOffset, long LastOffset)> Batches { get; } = [];

    /// <summary>
    /// Checks a batch as Kafka's producer state does. Returns Appended (the caller then calls
    /// <see cref="Record"/>), Duplicate with the original offsets, or the refusal.
    /// </summary>
    public static (BatchCommitStatus Status, long BaseOffset, long LastOffset) Check(ProducerState? state, short epoch, int firstSeq, int recordCount)
    {
        if (state is null)
        {
            // Kafka accepts any sequence from a producer it has no state for (its state may have been
            // removed with the records by retention or DeleteRecords).
            return (BatchCommitStatus.Appended, -1, -1);
        }

        if (epoch < state.Epoch)
        {
            return (BatchCommitStatus.InvalidProducerEpoch, -1, -1);
        }

        if (epoch > state.Epoch)
        {
            // A bumped epoch starts its sequences again at 0.
            return firstSeq == 0 ? (BatchCommitStatus.Appended, -1, -1) : (BatchCommitStatus.OutOfOrderSequence, -1, -1);
        }

        var lastSeq = LastSequence(firstSeq, recordCount);
        foreach (var b in state.Batches)
        {
            if (b.FirstSeq == firstSeq && b.LastSeq == lastSeq)
            {
                return (BatchCommitStatus.Duplicate, b.BaseOffset, b.LastOffset);
            }
        }

        if (state.Batches.Count == 0)
        {
            return (BatchCommitStatus.Appended, -1, -1);
        }

        var expected = state.Batches[^1].LastSeq == int.MaxValue ? 0 : state.Batches[^1].LastSeq + 1;
        return firstSeq == expected ? (BatchCommitStatus.Appended, -1, -1) : (BatchCommitStatus.OutOfOrderSequence, -1, -1);
    }

    /// <summary>Records an appended batch: a new epoch forgets the old epoch's batches; only the last five are kept.</summary>
    public void Record(short epoch, int firstSeq, int recordCount, long baseOffset)
    {
        if (epoch != Epoch)
        {
            Batches.Clear();
            Epoch = epoch;
        }

        Batches.Add((firstSeq, LastSequence(firstSeq, recordCount), baseOffset, baseOffset + recordCount - 1));
        if (Batches.Count > BatchesToRetain)
        {
            Batches.RemoveAt(0);
        }
    }

    /// <summary>The batch's last sequence: sequences wrap from int.MaxValue to 0.</summary>
    public static int LastSequence(int firstSeq, int recordCount) =>
        (int)(((long)firstSeq + recordCount - 1) % ((long)int.MaxValue + 1));

    /// <summary>The batches as the <c>batches</c> jsonb column holds them: [[firstSeq, lastSeq, baseOffset, lastOffset], ...], oldest first.</summary>
    public string BatchesJson()
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartArray();
            foreach (var b in Batches)
            {
                w.WriteStartArray();
                w.WriteNumberValue(b.FirstSeq);
                w.WriteNumberValue(b.LastSeq);
                w.WriteNumberValue(b.BaseOffset);
                w.WriteNumberValue(b.LastOffset);
                w.WriteEndArray();
            }

            w.WriteEndArray();
        }

        return Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length);
    }

    /// <summary>Reads a row of <c>moldau_producer_states</c>.</summary>
    public static ProducerState FromRow(short epoch, string batchesJson)
    {
        var state = new ProducerState(epoch);
        using var doc = JsonDocument.Parse(batchesJson);
        foreach (var b in doc.RootElement.EnumerateArray())
        {
            state.Batches.Add((b[0].GetInt32(), b[1].GetInt32(), b[2].GetInt64(), b[3].GetInt64()));
        }

        return state;
    }
}
