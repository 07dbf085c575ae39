using Moldau.Coordinator.Runtime;
using Moldau.Protocol.Records;

namespace Moldau.Coordinator.Tests;

/// <summary>
/// A coordinator partition in memory: appends keep the batches (with their base offsets set, as
/// the local log does), a test can make appends fail or hold durability until it releases it.
/// </summary>
internal sealed class MemoryCoordinatorLog(string name = "memory-0") : ICoordinatorLog
{
    private readonly List<byte[]> _batches = [];
    private readonly Lock _lock = new();
    private TaskCompletionSource? _durability;
    private long _end;

    public string Name => name;

    public long StartOffset => 0;

    public long EndOffset
    {
        get
        {
            lock (_lock)
            {
                return _end;
            }
        }
    }

    /// <summary>Appends throw <see cref="IOException"/> while set (a full disk).</summary>
    public bool FailAppends { get; set; }

    /// <summary>While set, appends are refused with this error, as a partition refuses a fenced producer's batch.</summary>
    public Moldau.Protocol.ErrorCode? RefuseAppends { get; set; }

    /// <summary>How many batches were appended.</summary>
    public int BatchCount
    {
        get
        {
            lock (_lock)
            {
                return _batches.Count;
            }
        }
    }

    /// <summary>How many durability waits are outstanding on a held log.</summary>
    public int Waiting { get; private set; }

    /// <summary>From now on, durability waits stay pending until <see cref="Release"/>.</summary>
    public void Hold() => _durability = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes every durability wait held so far (and stops holding).</summary>
    public void Release()
    {
        var held = _durability;
        _durability = null;
        held?.TrySetResult();
    }

    /// <summary>Fails every durability wait held so far (an fsync error).</summary>
    public void FailDurability()
    {
        var held = _durability;
        _durability = null;
        held?.TrySetException(new IOException("fsync failed"));
    }

    public long Append(byte[] batch)
    {
        if (FailAppends)
        {
            throw new IOException("no space left on device");
        }

        if (RefuseAppends is { } refusal)
        {
            throw new CoordinatorWriteRefusedException(refusal, "refused");
        }

        lock (_lock)
        {
            var copy = batch.ToArray();
            RecordBatch.SetBaseOffset(copy, _end);
            _batches.Add(copy);
            _end = new RecordBatch(copy).LastOffset + 1;
            return _end;
        }
    }

    public Task WaitDurableAsync(long endOffset)
    {
        if (_durability is { } held)
        {
            Waiting++;
            return held.Task;
        }

        return Task.CompletedTask;
    }

    public ReadOnlyMemory<byte> Read(long offset, int maxBytes)
    {
        lock (_lock)
        {
            var chosen = new List<byte>();
            foreach (var b in _batches)
            {
                if (new RecordBatch(b).LastOffset < offset)
                {
                    continue;
                }

                if (chosen.Count > 0 && chosen.Count + b.Length > maxBytes)
                {
                    break;
                }

                chosen.AddRange(b);
            }

            return chosen.ToArray();
        }
    }

    /// <summary>Every record written, decoded.</summary>
    public List<OffsetsTopic.Entry> Entries() => [.. OffsetsTopic.Replay(this)];
}
