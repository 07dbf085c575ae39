namespace Moldau.Coordinator.Runtime;

/// <summary>
/// A shard's timer (session and rebalance timeouts, offset expiry): keyed deadlines on the
/// runtime's <see cref="TimeProvider"/>, each of which, when due, runs its operation as a write
/// operation in the shard's turn. Scheduling a key again replaces its deadline.
/// </summary>
/// <typeparam name="TShard">The shard state.</typeparam>
public sealed class CoordinatorTimer<TShard> : IDisposable
    where TShard : class, ICoordinatorShard
{
    private readonly TimeProvider _time;
    private readonly Action<Func<TShard, CoordinatorResult<bool>>> _submit;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);
    private bool _disposed;

    internal CoordinatorTimer(TimeProvider time, Action<Func<TShard, CoordinatorResult<bool>>> submit)
    {
        _time = time;
        _submit = submit;
    }

    /// <summary>Runs <paramref name="operation"/> after <paramref name="delay"/> (replacing what <paramref name="key"/> had).</summary>
    public void Schedule(string key, TimeSpan delay, Func<TShard, CoordinatorResult<bool>> operation)
    {
        var entry = new Entry(this, key, operation);
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }

            if (_entries.Remove(key, out var old))
            {
                old.Timer?.Dispose();
            }

            if (delay > TimeSpan.Zero)
            {
                _entries[key] = entry;
                entry.Timer = _time.CreateTimer(static e => ((Entry)e!).Fire(), entry, delay, Timeout.InfiniteTimeSpan);
                return;
            }
        }

        // Already due: it queues behind whatever the shard is doing now.
        _submit(operation);
    }

    /// <summary>Whether <paramref name="key"/> has a pending deadline.</summary>
    public bool IsScheduled(string key)
    {
        lock (_lock)
        {
            return _entries.ContainsKey(key);
        }
    }

    /// <summary>Drops <paramref name="key"/>'s deadline, if any.</summary>
    public void Cancel(string key)
    {
        lock (_lock)
        {
            if (_entries.Remove(key, out var old))
            {
                old.Timer?.Dispose();
            }
        }
    }

    /// <summary>Drops every deadline.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            foreach (var e in _entries.Values)
            {
                e.Timer?.Dispose();
            }

            _entries.Clear();
        }
    }

    private sealed class Entry(CoordinatorTimer<TShard> owner, string key, Func<TShard, CoordinatorResult<bool>> operation)
    {
        public ITimer? Timer { get; set; }

        public void Fire()
        {
            lock (owner._lock)
            {
                // Replaced or cancelled since this timer was armed: it no longer counts.
                if (!owner._entries.TryGetValue(key, out var current) || current != this)
                {
                    return;
                }

                owner._entries.Remove(key);
                Timer?.Dispose();
            }

            owner._submit(operation);
        }
    }
}
