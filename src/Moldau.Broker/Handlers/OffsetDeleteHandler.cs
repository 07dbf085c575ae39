using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetDelete: drops committed offsets of topics the group no longer subscribes to.</summary>
internal sealed class OffsetDeleteHandler(GroupCoordinator coordinator) : IApiHandler<OffsetDeleteRequest, OffsetDeleteResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetDeleteResponse> HandleAsync(RequestContext context, OffsetDeleteRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(request));

    /// <inheritdoc/>
    public OffsetDeleteResponse ErrorResponse(RequestContext context, OffsetDeleteRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    public OffsetDeleteResponse Handle(OffsetDeleteRequest request)
    {
        var (error, results) = coordinator.DeleteOffsets(request.GroupId, request.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex))).ToList());
        return new OffsetDeleteResponse
        {
            ErrorCode = (short)error,
            Topics = results.GroupBy(r => r.Topic).Select(t => new OffsetDeleteResponse.OffsetDeleteResponseTopic
            {
                Name = t.Key,
                Partitions = t.Select(r => new OffsetDeleteResponse.OffsetDeleteResponsePartition { PartitionIndex = r.Partition, ErrorCode = (short)r.Error }).ToList(),
            }).ToList(),
        };
    }
}
