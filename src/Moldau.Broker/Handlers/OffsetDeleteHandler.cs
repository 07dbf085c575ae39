using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetDelete: drops committed offsets of topics the group no longer subscribes to.</summary>
internal sealed class OffsetDeleteHandler(GroupCoordinator coordinator) : IApiHandler<OffsetDeleteRequest, OffsetDeleteResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetDeleteResponse> HandleAsync(RequestContext context, OffsetDeleteRequest request, CancellationToken cancellationToken) => new(HandleAsync(request));

    /// <inheritdoc/>
    public OffsetDeleteResponse ErrorResponse(RequestContext context, OffsetDeleteRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<OffsetDeleteResponse> HandleAsync(OffsetDeleteRequest request)
    {
        var (error, results) = await coordinator.DeleteOffsetsAsync(request.GroupId, request.Topics.SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex))).ToList()).ConfigureAwait(false);
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
