namespace Moldau.Broker;

/// <summary>
/// The order in which one connection's produce requests append to each partition: the order they
/// were dispatched in, even when a handler waits before or while it appends. An idempotent
/// producer sends up to five requests per partition at once and relies on that order (Kafka keeps
/// it by reading one request per connection at a time).
/// </summary>
/// <remarks>
/// A request takes its turn on a partition with <see cref="Enter"/> synchronously, as it is
/// dispatched (so turns follow arrival order), waits for the turn, appends, then gives the turn
/// back with <see cref="Exit"/>. While the appends are synchronous (today's local log), every turn
/// is granted at once and given back before the next request is dispatched: a lock and a lookup,
/// nothing allocated. Only a turn that must wait allocates. Order is a promise per connection:
/// different connections append side by side, as with Kafka; the log orders their appends.
/// The same turns make <see cref="WhenIdleAsync"/>: the point where every append dispatched so far
/// is done, which requests without an ordering key wait for.
/// </remarks>
internal sealed class ProduceSequencer
{
    private readonly Lock _lock = new();
    private readonly Dictionary<object, Slot> _slots = new(ReferenceEqualityComparer.Instance);
    private int _held;
    private TaskCompletionSource? _idle;

    /// <summary>Turns taken and not given back, over all partitions.</summary>
    public bool IsIdle => Volatile.Read(ref _held) == 0;

    /// <summary>
    /// Takes this request's turn on <paramref name="partition"/> (any object that stands for one
    /// partition, the same each time): completed at once when no earlier turn on it is still held,
    /// else when the one before is given back. Call <see cref="Exit"/> once the append is done.
    /// </summary>
    public ValueTask Enter(object partition)
    {
        lock (_lock)
        {
            _held++;
            if (!_slots.TryGetValue(partition, out var slot))
            {
                slot = new Slot();
                _slots.Add(partition, slot);
            }

            if (!slot.Held)
            {
                slot.Held = true;
                return ValueTask.CompletedTask;
            }

            var turn = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (slot.Waiting ??= new Queue<TaskCompletionSource>()).Enqueue(turn);
            return new ValueTask(turn.Task);
        }
    }

    /// <summary>Gives back the turn on <paramref name="partition"/>: the next request waiting for it goes on.</summary>
    public void Exit(object partition)
    {
        TaskCompletionSource? next = null, idle = null;
        lock (_lock)
        {
            var slot = _slots[partition];
            if (slot.Waiting is { Count: > 0 } waiting)
            {
                next = waiting.Dequeue();
            }
            else
            {
                slot.Held = false;
                if (_slots.Count > 64)
                {
                    // A connection that wrote to many partitions once keeps no slot for each.
                    _slots.Remove(partition);
                }
            }

            if (--_held == 0)
            {
                idle = _idle;
                _idle = null;
            }
        }

        next?.SetResult();
        idle?.SetResult();
    }

    /// <summary>Completes once no turn is held: every append dispatched so far is done.</summary>
    public ValueTask WhenIdleAsync()
    {
        if (IsIdle)
        {
            return ValueTask.CompletedTask;
        }

        lock (_lock)
        {
            if (_held == 0)
            {
                return ValueTask.CompletedTask;
            }

            _idle ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            return new ValueTask(_idle.Task);
        }
    }

    private sealed class Slot
    {
        public bool Held;
        public Queue<TaskCompletionSource>? Waiting;
    }
}
