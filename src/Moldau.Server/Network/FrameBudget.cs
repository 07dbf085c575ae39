namespace Moldau.Server.Network;

/// <summary>
/// The bytes of request frames held across all connections (Kafka's queued.max.request.bytes).
/// A connection takes a frame's declared size before it receives the body and gives it back once
/// the frame is answered or dropped; while the budget is spent, reading pauses. Whatever fits is
/// granted, waiters in arrival order first: a large frame waiting does not hold back the small
/// requests of other clients that still fit.
/// </summary>
internal sealed class FrameBudget(long capacity)
{
    private readonly Lock _lock = new();
    private readonly LinkedList<Waiter> _waiters = new();
    private long _used;

    private sealed class Waiter(long bytes)
    {
        public long Bytes { get; } = bytes;

        public TaskCompletionSource Granted { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    /// <summary>The bound; <see cref="long.MaxValue"/> when unbounded.</summary>
    public long Capacity { get; } = capacity > 0 ? capacity : long.MaxValue;

    /// <summary>Bytes taken now.</summary>
    public long Used
    {
        get
        {
            lock (_lock)
            {
                return _used;
            }
        }
    }

    /// <summary>Takes <paramref name="bytes"/> at once when they are free; false when the caller must wait.</summary>
    public bool TryTake(long bytes)
    {
        lock (_lock)
        {
            if (_used + bytes <= Capacity)
            {
                _used += bytes;
                return true;
            }

            return false;
        }
    }

    /// <summary>Takes <paramref name="bytes"/> (at most <see cref="Capacity"/>), waiting for them to be given back if need be.</summary>
    public async ValueTask TakeAsync(long bytes, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(bytes, Capacity);
        Waiter waiter;
        LinkedListNode<Waiter> node;
        lock (_lock)
        {
            if (_used + bytes <= Capacity)
            {
                _used += bytes;
                return;
            }

            waiter = new Waiter(bytes);
            node = _waiters.AddLast(waiter);
        }

        using (cancellationToken.Register(() =>
        {
            lock (_lock)
            {
                // Still queued: leave the line. Already granted: the caller owns the bytes and gives them back.
                if (node.List is not null)
                {
                    _waiters.Remove(node);
                    waiter.Granted.TrySetCanceled(cancellationToken);
                }
            }

            Grant();
        }))
        {
            await waiter.Granted.Task.ConfigureAwait(false);
        }
    }

    /// <summary>Gives back <paramref name="bytes"/> taken before.</summary>
    public void Give(long bytes)
    {
        lock (_lock)
        {
            _used -= bytes;
        }

        Grant();
    }

    private void Grant()
    {
        lock (_lock)
        {
            for (var node = _waiters.First; node is not null;)
            {
                var next = node.Next;
                if (_used + node.Value.Bytes <= Capacity)
                {
                    _used += node.Value.Bytes;
                    _waiters.Remove(node);
                    node.Value.Granted.TrySetResult();
                }

                node = next;
            }
        }
    }
}
