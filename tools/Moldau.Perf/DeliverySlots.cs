namespace Moldau.Perf;

/// <summary>
/// A fixed set of in-flight slots, each with its own cached delivery handler, so an acknowledgement
/// finds its send time without a closure per record. The sending thread takes a slot, stamps it
/// and produces; a delivery handler reads the stamp and gives the slot back. Free slots live in a
/// single-producer single-consumer ring (the handlers write, the sender reads). Handlers run one
/// at a time under a lock: librdkafka serves delivery reports on the client's poll thread and,
/// during Flush, on the flushing thread too, so two can otherwise run at once and lose a count
/// or a slot. The lock is uncontended except while flushing.
/// </summary>
/// <typeparam name="TReport">The delivery report type.</typeparam>
internal sealed class DeliverySlots<TReport>
{
    private readonly long[] _sentTicks;
    private readonly int[] _free;
    private readonly int _mask;
    private readonly Lock _handling = new();
    private long _read;
    private long _written;

    /// <summary>At least <paramref name="count"/> slots (rounded up to a power of two), all free; <paramref name="onDelivery"/> gets the slot's send time.</summary>
    public DeliverySlots(int count, Action<long, TReport> onDelivery)
    {
        var size = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Math.Max(count, 1));
        _sentTicks = new long[size];
        _free = new int[size];
        _mask = size - 1;
        Handlers = new Action<TReport>[size];
        for (var i = 0; i < size; i++)
        {
            var slot = i;
            _free[i] = i;
            Handlers[i] = report =>
            {
                lock (_handling)
                {
                    onDelivery(_sentTicks[slot], report);
                    Release(slot);
                }
            };
        }

        _written = size;
    }

    /// <summary>The number of slots.</summary>
    public int Size => _free.Length;

    /// <summary>The delivery handler of each slot.</summary>
    public Action<TReport>[] Handlers { get; }

    /// <summary>
    /// Waits until every delivery handler has returned, up to <paramref name="timeout"/>: the
    /// client's Flush returns once its queue is empty, which can be while the last handlers are
    /// still running on the delivery thread. True when all slots are free.
    /// </summary>
    public bool WaitAllReturned(TimeSpan timeout)
    {
        var deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        while (Volatile.Read(ref _written) - _read != _free.Length)
        {
            if (Environment.TickCount64 > deadline)
            {
                return false;
            }

            Thread.Sleep(1);
        }

        return true;
    }

    /// <summary>Takes a free slot and stamps it with <paramref name="sentTicks"/>; false when every slot is in flight.</summary>
    public bool TryTake(long sentTicks, out int slot)
    {
        var read = _read;
        if (read == Volatile.Read(ref _written))
        {
            slot = -1;
            return false;
        }

        slot = _free[read & _mask];
        _sentTicks[slot] = sentTicks;
        Volatile.Write(ref _read, read + 1);
        return true;
    }

    // Called under the handling lock, after the report is handled; the ring never holds more than
    // Size entries, so it cannot overrun.
    private void Release(int slot)
    {
        var written = _written;
        _free[written & _mask] = slot;
        Volatile.Write(ref _written, written + 1);
    }
}
