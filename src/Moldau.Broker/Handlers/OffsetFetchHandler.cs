using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetFetch: one group (v0-v7) or a batch of groups (v8+); -1 where nothing was committed.</summary>
internal sealed class OffsetFetchHandler(GroupCoordinator coordinator) : IApiHandler<OffsetFetchRequest, OffsetFetchResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetFetchResponse> HandleAsync(RequestContext context, OffsetFetchRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public OffsetFetchResponse ErrorResponse(RequestContext context, OffsetFetchRequest request, ErrorCode error) => new()
    {
        ErrorCode = (short)error,
        Topics = [.. (request.Topics ?? []).Select(t => new OffsetFetchResponse.OffsetFetchResponseTopic
        {
            Name = t.Name,
            Partitions = [.. t.PartitionIndexes.Select(i => new OffsetFetchResponse.OffsetFetchResponsePartition { PartitionIndex = i, CommittedOffset = -1, CommittedLeaderEpoch = -1, ErrorCode = (short)error })],
        })],
        Groups = [.. request.Groups.Select(g => new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)error })],
    };

    public OffsetFetchResponse Handle(RequestContext context, OffsetFetchRequest request)
    {
        if (context.Version >= 8)
        {
            var response = new OffsetFetchResponse();
            foreach (var g in request.Groups)
            {
                var offsets = coordinator.Fetch(g.GroupId, g.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList());
                response.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup
                {
                    GroupId = g.GroupId,
                    Topics = offsets.GroupBy(o => o.Topic).Select(t => new OffsetFetchResponse.OffsetFetchResponseTopics
                    {
                        Name = t.Key,
                        Partitions = t.Select(o => new OffsetFetchResponse.OffsetFetchResponsePartitions
                        {
                            PartitionIndex = o.Partition,
                            CommittedOffset = o.Offset?.Offset ?? -1,
                            CommittedLeaderEpoch = o.Offset?.LeaderEpoch ?? -1,
                            Metadata = o.Offset?.Metadata ?? string.Empty,
                        }).ToList(),
                    }).ToList(),
                });
            }

            return response;
        }

        var single = coordinator.Fetch(request.GroupId, request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList());
        return new OffsetFetchResponse
        {
            Topics = single.GroupBy(o => o.Topic).Select(t => new OffsetFetchResponse.OffsetFetchResponseTopic
            {
                Name = t.Key,
                Partitions = t.Select(o => new OffsetFetchResponse.OffsetFetchResponsePartition
                {
                    PartitionIndex = o.Partition,
                    CommittedOffset = o.Offset?.Offset ?? -1,
                    CommittedLeaderEpoch = o.Offset?.LeaderEpoch ?? -1,
                    Metadata = o.Offset?.Metadata ?? string.Empty,
                }).ToList(),
            }).ToList(),
        };
    }
}
