using Microsoft.Extensions.Logging;
using Moldau.Broker.Topics;

namespace Moldau.Broker.Retention;

/// <summary>
/// Time and size retention, as Kafka applies it to logs whose cleanup.policy includes "delete":
/// whole closed segments whose newest record is older than retention.ms go, and the oldest closed
/// segments go while the log is larger than retention.bytes. The log start offset moves to the
/// first remaining segment (and is recorded in the log dir's checkpoint). The active segment is
/// never deleted, nor a segment at or past the last stable offset (records of an open transaction,
/// or not yet below the high watermark).
/// </summary>
internal sealed class RetentionPolicy(BrokerState state)
{
    /// <summary>Applies retention to every partition once.</summary>
    public void Run()
    {
        var now = state.Time.GetUtcNow().ToUnixTimeMilliseconds();
        foreach (var topic in state.Topics.Topics.ToList())
        {
            foreach (var partition in topic.Partitions)
            {
                // The topic's configs as the log holds them (a change reaches it at once). A log
                // start-up has not opened yet is not opened for this: the next run after it is.
                if (partition.Log is not { } log || log.Options is not { Delete: true } settings)
                {
                    continue;
                }

                var (retentionMs, retentionBytes) = (settings.RetentionMs, settings.RetentionBytes);
                var segments = log.Segments();
                var total = segments.Sum(s => s.Size);
                long? newStart = null;

                // Whole segments below the last stable offset only: never one that holds records at
                // or past the high watermark (as Kafka), nor one an open transaction started in or
                // runs through, so a transaction's records stay until its marker makes it stable.
                var stable = log.LastStableOffset;
                for (var i = 0; i < segments.Count - 1 && segments[i + 1].BaseOffset <= stable; i++)
                {
                    var expired = retentionMs >= 0 && segments[i].MaxTimestamp >= 0 && now - segments[i].MaxTimestamp > retentionMs;
                    var tooBig = retentionBytes >= 0 && total - segments[i].Size >= retentionBytes;
                    if (!expired && !tooBig)
                    {
                        break;
                    }

                    total -= segments[i].Size;
                    newStart = segments[i + 1].BaseOffset;
                }

                if (newStart is { } start && start > log.LogStartOffset)
                {
                    try
                    {
                        state.Topics.AdvanceLogStart(log, start);
                        state.Log.LogInformation("retention: {Topic}-{Partition} now starts at offset {Offset}", topic.Name, partition.Index, start);
                    }
                    catch (IOException e)
                    {
                        state.Log.LogWarning("retention of {Topic}-{Partition} failed: {Error}", topic.Name, partition.Index, e.Message);
                    }
                }
            }
        }
    }
}
