using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Moldau.Protocol.Records;
using Moldau.Storage.Cleaning;

namespace Moldau.Storage.Tests;

/// <summary>
/// A property test of <see cref="PartitionLog"/> against a simple model: random sequences of
/// appends, reads, flushes, rolls (small segments), retention, compaction, clean restarts and
/// unclean ones (the log dropped without a close, its unsynced tail possibly cut). Every read
/// agrees with the model, and offsets never go backwards: the log end never drops below a high
/// watermark once seen, and an offset once read never names another record.
/// </summary>
public sealed class PartitionLogPropertyTests
{
    /// <summary>One step: its kind (0-99, weighted below) and two random parameters.</summary>
    private readonly record struct Step(int Kind, int A, int B)
    {
        public override string ToString() => Kind switch
        {
            < 45 => $"append({(A % 3) + 1} records, key {B % 5})",
            < 58 => $"read({A})",
            < 64 => "flush",
            < 70 => $"retention({A})",
            < 76 => "compact",
            < 86 => "clean restart",
            _ => $"unclean restart(cut {A})",
        };
    }

    private static readonly Gen<(int SegmentBytes, Step[] Steps)> Scenarios =
        Gen.Select(
            Gen.Int[250, 1200],
            Gen.Select(Gen.Int[0, 99], Gen.Int[0, 1000], Gen.Int[0, 1000]).Select(t => new Step(t.Item1, t.Item2, t.Item3)).Array[1, 30]);

    [Fact]
    public void EveryReadAgreesWithTheModelAndOffsetsNeverGoBackwards() =>
        Scenarios.Sample(s => Run(s.SegmentBytes, s.Steps), iter: 30, threads: 1, print: s => $"segment.bytes={s.SegmentBytes}: {string.Join(", ", s.Steps)}");

    private sealed class Model
    {
        /// <summary>Records known to be in the log, by offset: key, value, and whether compaction may have removed it.</summary>
        public SortedDictionary<long, (int Key, string Value, bool Optional)> Records { get; } = [];

        /// <summary>Records written but not yet synced when the log was dropped: they may or may not be there.</summary>
        public SortedDictionary<long, (int Key, string Value)> Uncertain { get; } = [];

        public long LogStart { get; set; }

        /// <summary>The largest high watermark seen: the log end never drops below it.</summary>
        public long Visible { get; set; }

        public int Written { get; set; }
    }

    private static void Run(int segmentBytes, Step[] steps)
    {
        var dir = Path.Combine(Path.GetTempPath(), "moldau-prop-" + Guid.NewGuid().ToString("N")[..10]);
        var model = new Model();
        var log = Open(dir, segmentBytes, clean: false, recoveryPoint: 0, cleanedUpTo: 0);
        try
        {
            foreach (var step in steps)
            {
                log = Apply(log, step, model, dir, segmentBytes);
                Assert.True(log.LogEndOffset >= model.Visible, $"log end {log.LogEndOffset} below a high watermark seen, {model.Visible}");
                model.Visible = Math.Max(model.Visible, log.HighWatermark);
            }

            log.Flush();
            ReadAll(log, model);
        }
        finally
        {
            log.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static PartitionLog Open(string dir, int segmentBytes, bool clean, long recoveryPoint, long cleanedUpTo) =>
        PartitionLog.Open(
            dir,
            new PartitionLogOptions
            {
                SegmentBytes = segmentBytes,
                IndexIntervalBytes = 128,
                SyncBeforeAck = true,
                DirectIo = false,
                FileDeleteDelay = TimeSpan.Zero,
                CleanShutdown = clean,
                RecoveryPoint = recoveryPoint,
                CleanedUpTo = cleanedUpTo,
            },
            TimeProvider.System);

    private static PartitionLog Apply(PartitionLog log, Step step, Model model, string dir, int segmentBytes)
    {
        switch (step.Kind)
        {
            case < 45:
                {
                    var records = Enumerable.Range(0, (step.A % 3) + 1).Select(i => (Key: (step.B + i) % 5, Value: $"v{model.Written++}")).ToList();
                    var batch = RecordBatchBuilder.Build(records.Select(r => new RecordToWrite(Encoding.UTF8.GetBytes($"k{r.Key}"), Encoding.UTF8.GetBytes(r.Value), 1000 + model.Written)).ToList());
                    var result = log.Append(batch, 0);
                    Assert.Equal(AppendStatus.Appended, result.Status);
                    var highest = model.Records.Count > 0 ? model.Records.Keys.Max() : -1;
                    Assert.True(result.BaseOffset > highest && result.BaseOffset >= model.Visible, $"append got {result.BaseOffset}, after {highest} and a high watermark of {model.Visible}");
                    for (var i = 0; i < records.Count; i++)
                    {
                        model.Records[result.BaseOffset + i] = (records[i].Key, records[i].Value, false);
                    }

                    return log;
                }

            case < 58:
                {
                    var from = model.LogStart + (step.A % Math.Max(1, log.HighWatermark - model.LogStart));
                    var bytes = log.Read(from, 1 + (step.B % 600), minOneBatch: true, maxOffset: log.HighWatermark);
                    // Whole batches come back: the one holding the offset may start before it.
                    foreach (var (offset, key, value) in Parse(bytes).Where(r => r.Offset >= from))
                    {
                        AssertAgrees(model, offset, key, value);
                    }

                    return log;
                }

            case < 64:
                log.Flush();
                ReadAll(log, model);
                return log;

            case < 70:
                {
                    var to = model.LogStart + (step.A % Math.Max(1, log.HighWatermark - model.LogStart + 1));
                    log.AdvanceLogStartOffset(to);
                    model.LogStart = Math.Max(model.LogStart, to);
                    foreach (var offset in model.Records.Keys.Where(o => o < model.LogStart).ToList())
                    {
                        model.Records.Remove(offset);
                    }

                    return log;
                }

            case < 76:
                {
                    log.Clean(new CleanerSettings());
                    var latest = new Dictionary<int, long>();
                    foreach (var (offset, r) in model.Records)
                    {
                        latest[r.Key] = offset;
                    }

                    foreach (var (offset, r) in model.Records.ToList())
                    {
                        if (latest[r.Key] > offset)
                        {
                            model.Records[offset] = r with { Optional = true };
                        }
                    }

                    return log;
                }

            case < 86:
                {
                    var (recoveryPoint, cleaned) = (log.RecoveryPoint, log.CleanedUpTo);
                    log.Dispose();
                    Assert.True(log.ClosedCleanly);
                    var reopened = Open(dir, segmentBytes, clean: true, recoveryPoint, cleaned);
                    Assert.False(reopened.RecoveryLostRecords);
                    reopened.AdvanceLogStartOffset(model.LogStart);
                    ReadAll(reopened, model);
                    return reopened;
                }

            default:
                {
                    // Dropped without a close: what was synced (below the high watermark) stays, the
                    // rest may be cut anywhere, as a power loss cuts it.
                    var durable = log.HighWatermark;
                    var (recoveryPoint, cleaned) = (log.RecoveryPoint, log.CleanedUpTo);
                    foreach (var (offset, r) in model.Records.Where(r => r.Key >= durable).ToList())
                    {
                        model.Records.Remove(offset);
                        model.Uncertain[offset] = (r.Key, r.Value);
                    }

                    CutUnsyncedTail(dir, durable, step.A);
                    var reopened = Open(dir, segmentBytes, clean: false, Math.Min(recoveryPoint, durable), cleaned);
                    reopened.AdvanceLogStartOffset(model.LogStart);

                    // Whatever survived of the unsynced records is read back once, then known.
                    foreach (var (offset, key, value) in ReadFrom(reopened, reopened.LogStartOffset))
                    {
                        if (model.Uncertain.Remove(offset, out var u))
                        {
                            Assert.Equal((u.Key, u.Value), (key, value));
                            model.Records[offset] = (key, value, false);
                        }
                    }

                    model.Uncertain.Clear();
                    ReadAll(reopened, model);
                    return reopened;
                }
        }
    }

    /// <summary>Cuts the last segment somewhere after the end of its last batch below <paramref name="durable"/>.</summary>
    private static void CutUnsyncedTail(string dir, long durable, int choice)
    {
        var last = Directory.GetFiles(dir, "*.log").OrderBy(p => p, StringComparer.Ordinal).Last();
        var bytes = File.ReadAllBytes(last);
        var keep = 0;
        for (var at = 0; at + RecordBatch.HeaderSize <= bytes.Length;)
        {
            var size = (int)RecordBatch.DeclaredSize(bytes.AsSpan(at));
            if (size < RecordBatch.HeaderSize || at + size > bytes.Length)
            {
                break;
            }

            var lastOffset = BinaryPrimitives.ReadInt64BigEndian(bytes.AsSpan(at)) + BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(at + 23));
            at += size;
            if (lastOffset < durable)
            {
                keep = at;
            }
        }

        var cutTo = keep + (choice % (bytes.Length - keep + 1));
        using var handle = File.OpenHandle(last, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        RandomAccess.SetLength(handle, cutTo);
    }

    private static void AssertAgrees(Model model, long offset, int key, string value)
    {
        Assert.True(offset >= model.LogStart, $"offset {offset} read below the log start {model.LogStart}");
        Assert.True(model.Records.TryGetValue(offset, out var expected), $"offset {offset} ({key}, {value}) read, but the model has nothing there");
        Assert.Equal((expected.Key, expected.Value), (key, value));
    }

    /// <summary>Reads the whole log up to the high watermark: exactly the model's records, in order.</summary>
    private static void ReadAll(PartitionLog log, Model model)
    {
        var seen = new HashSet<long>();
        foreach (var (offset, key, value) in ReadFrom(log, model.LogStart))
        {
            AssertAgrees(model, offset, key, value);
            seen.Add(offset);
        }

        var missing = model.Records.Where(r => !r.Value.Optional && r.Key < log.HighWatermark && !seen.Contains(r.Key)).Select(r => r.Key).ToList();
        Assert.True(missing.Count == 0, $"not read back: offsets {string.Join(",", missing)} (log {log.LogStartOffset}..{log.HighWatermark})");
        foreach (var offset in model.Records.Where(r => r.Value.Optional && !seen.Contains(r.Key)).Select(r => r.Key).ToList())
        {
            model.Records.Remove(offset); // compacted away, for good
        }
    }

    private static List<(long Offset, int Key, string Value)> ReadFrom(PartitionLog log, long from)
    {
        var all = new List<(long, int, string)>();
        var next = Math.Max(from, log.LogStartOffset);
        while (next < log.HighWatermark)
        {
            var records = Parse(log.Read(next, 700, minOneBatch: true, maxOffset: log.HighWatermark));
            if (records.Count == 0)
            {
                break;
            }

            var previous = next;
            foreach (var r in records.Where(r => r.Offset >= previous))
            {
                Assert.True(r.Offset >= next, $"offset {r.Offset} read after {next - 1}");
                all.Add(r);
                next = r.Offset + 1;
            }

            next = Math.Max(next, LastOffsetOf(log.Read(previous, 700, minOneBatch: true, maxOffset: log.HighWatermark)) + 1);
        }

        return all;
    }

    private static long LastOffsetOf(ReadOnlyMemory<byte> bytes)
    {
        var last = -1L;
        for (var at = 0; at + RecordBatch.HeaderSize <= bytes.Length; at += (int)RecordBatch.DeclaredSize(bytes.Span[at..]))
        {
            last = new RecordBatch(bytes[at..]).LastOffset;
        }

        return last;
    }

    private static List<(long Offset, int Key, string Value)> Parse(ReadOnlyMemory<byte> bytes)
    {
        var records = new List<(long, int, string)>();
        for (var at = 0; at + RecordBatch.HeaderSize <= bytes.Length;)
        {
            var size = (int)RecordBatch.DeclaredSize(bytes.Span[at..]);
            var batch = new RecordBatch(bytes.Slice(at, size));
            Assert.True(batch.IsCrcValid(), $"batch at {batch.BaseOffset} fails its CRC");
            foreach (var r in batch.GetRecords())
            {
                records.Add((batch.BaseOffset + r.OffsetDelta, int.Parse(Encoding.UTF8.GetString(r.Key!.Value.Span)[1..], System.Globalization.CultureInfo.InvariantCulture), Encoding.UTF8.GetString(r.Value!.Value.Span)));
            }

            at += size;
        }

        return records;
    }
}
