using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetCommit: records committed offsets in __consumer_offsets.</summary>
internal sealed class OffsetCommitHandler(GroupCoordinator coordinator) : IApiHandler<OffsetCommitRequest, OffsetCommitResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetCommitResponse> HandleAsync(RequestContext context, OffsetCommitRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public OffsetCommitResponse ErrorResponse(RequestContext context, OffsetCommitRequest request, ErrorCode error) =>
        new() { Topics = [.. request.Topics.Select(t => new OffsetCommitResponse.OffsetCommitResponseTopic { Name = t.Name, Partitions = [.. t.Partitions.Select(p => new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = p.PartitionIndex, ErrorCode = (short)error })] })] };

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<OffsetCommitResponse> HandleAsync(RequestContext context, OffsetCommitRequest request)
    {
        // v0 has no generation or member: a simple commit.
        var generation = context.Version >= 1 ? request.GenerationIdOrMemberEpoch : -1;
        var offsets = request.Topics
            .SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata)))
            .ToList();
        var results = await coordinator.CommitAsync(request.GroupId, generation, request.MemberId, request.GroupInstanceId, offsets).ConfigureAwait(false);
        return new OffsetCommitResponse
        {
            Topics = results.GroupBy(r => r.Topic).Select(g => new OffsetCommitResponse.OffsetCommitResponseTopic
            {
                Name = g.Key,
                Partitions = g.Select(r => new OffsetCommitResponse.OffsetCommitResponsePartition { PartitionIndex = r.Partition, ErrorCode = (short)r.Error }).ToList(),
            }).ToList(),
        };
    }
}
