namespace Moldau.Coordinator;

/// <summary>
/// Hands out producer ids for InitProducerId (Kafka's <c>ProducerIdManager</c>). Ids come from
/// blocks that the metadata log records as taken before any id of them is used (a
/// ProducerIdsRecord), so an id is never handed out twice, across restarts too; what is left of
/// a block when the broker stops is skipped. A new block is asked for when one is used up.
/// </summary>
public sealed class ProducerIdManager(Func<ProducerIdBlock> allocateBlock)
{
    private readonly Lock _lock = new();
    private long _next;
    private long _end;

    /// <summary>The next producer id; takes (and durably records) a new block when the current one is used up.</summary>
    public long GenerateProducerId()
    {
        lock (_lock)
        {
            if (_next >= _end)
            {
                var block = allocateBlock();
                if (block.Size <= 0 || block.FirstProducerId < _end)
                {
                    throw new InvalidOperationException($"producer id block {block} is empty or overlaps ids handed out before {_end}");
                }

                (_next, _end) = (block.FirstProducerId, block.NextBlockFirstId);
            }

            return _next++;
        }
    }
}
