namespace Moldau.Broker;

/// <summary>
/// A few objects kept for reuse across requests and connections (requests of one connection
/// are in flight together, and dispatched from more than one thread). A full pool drops what
/// is returned; an empty one makes a new object.
/// </summary>
internal sealed class ReusePool<T>
    where T : class, new()
{
    private readonly T?[] _items = new T?[64];
    private readonly Lock _lock = new();
    private int _count;

    /// <summary>A kept object, or a new one.</summary>
    public T Rent()
    {
        lock (_lock)
        {
            if (_count > 0)
            {
                var item = _items[--_count]!;
                _items[_count] = null;
                return item;
            }
        }

        return new T();
    }

    /// <summary>Keeps <paramref name="item"/> for the next <see cref="Rent"/>, unless the pool is full.</summary>
    public void Return(T item)
    {
        lock (_lock)
        {
            if (_count < _items.Length)
            {
                _items[_count++] = item;
            }
        }
    }
}
