using System.Net;

namespace Moldau.Server.Network;

/// <summary>
/// Open connections, in total and per client address, as Kafka's ConnectionQuotas counts them:
/// at max.connections a listener stops accepting until a connection closes (new ones wait in the
/// listen backlog); over max.connections.per.ip (or its override for the address) a new
/// connection is closed at once.
/// </summary>
internal sealed class ConnectionQuotas(NetworkLimits limits)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<IPAddress, int> _perAddress = [];
    private TaskCompletionSource _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _total;

    /// <summary>Open connections (and slots taken for connections being accepted).</summary>
    public int Total
    {
        get
        {
            lock (_lock)
            {
                return _total;
            }
        }
    }

    /// <summary>Takes a slot for the next connection at once; false when max.connections are open.</summary>
    public bool TryTakeSlot()
    {
        lock (_lock)
        {
            if (_total >= limits.MaxConnections)
            {
                return false;
            }

            _total++;
            return true;
        }
    }

    /// <summary>Takes a slot for the next connection, waiting while max.connections are open.</summary>
    public async ValueTask TakeSlotAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task freed;
            lock (_lock)
            {
                if (_total < limits.MaxConnections)
                {
                    _total++;
                    return;
                }

                freed = _slotFreed.Task;
            }

            await freed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Counts a connection from <paramref name="address"/> (its slot already taken); false, with the limit, when that address is at its limit.</summary>
    public bool TryAdd(IPAddress address, out int limit)
    {
        address = Normalize(address);
        limit = limits.MaxConnectionsPerIpOverrides.TryGetValue(address, out var o) ? o : limits.MaxConnectionsPerIp;
        lock (_lock)
        {
            var count = _perAddress.GetValueOrDefault(address);
            if (count >= limit)
            {
                return false;
            }

            _perAddress[address] = count + 1;
            return true;
        }
    }

    /// <summary>Gives back a connection's slot, and its count for <paramref name="address"/> when it was counted.</summary>
    public void Remove(IPAddress? address)
    {
        TaskCompletionSource freed;
        lock (_lock)
        {
            if (address is not null)
            {
                address = Normalize(address);
                var count = _perAddress.GetValueOrDefault(address);
                if (count <= 1)
                {
                    _perAddress.Remove(address);
                }
                else
                {
                    _perAddress[address] = count - 1;
                }
            }

            _total--;
            freed = _slotFreed;
            _slotFreed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        freed.TrySetResult();
    }

    /// <summary>A client on a dual-mode socket appears as ::ffff:a.b.c.d; it is counted as a.b.c.d.</summary>
    public static IPAddress Normalize(IPAddress address) => address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
}
