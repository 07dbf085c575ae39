using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetDelete: drops committed offsets of topics the group no longer subscribes to.</summary>
internal sealed class OffsetDeleteHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<OffsetDeleteRequest, OffsetDeleteResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetDeleteResponse> HandleAsync(RequestContext context, OffsetDeleteRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public OffsetDeleteResponse ErrorResponse(RequestContext context, OffsetDeleteRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<OffsetDeleteResponse> HandleAsync(RequestContext context, OffsetDeleteRequest request)
    {
        // Delete on the group, Read on each topic, as Kafka.
        if (!authorizer.OnGroup(context, AclOperation.Delete, request.GroupId))
        {
            return ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed);
        }

        var refused = request.Topics.Where(t => !authorizer.OnTopic(context, AclOperation.Read, t.Name)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var (error, results) = await coordinator.DeleteOffsetsAsync(request.GroupId, request.Topics.Where(t => !refused.Contains(t.Name)).SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex))).ToList()).ConfigureAwait(false);
        if (refused.Count > 0)
        {
            results = [.. results, .. request.Topics.Where(t => refused.Contains(t.Name)).SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, ErrorCode.TopicAuthorizationFailed)))];
        }

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
