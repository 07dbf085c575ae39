using Moldau.Broker.Authorization;
using Moldau.Broker.Cluster;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// OffsetCommit: records committed offsets in __consumer_offsets; in cluster mode the offsets the
/// coordinator accepted are then stored in PostgreSQL (<paramref name="stored"/>), and only then answered.
/// </summary>
internal sealed class OffsetCommitHandler(GroupCoordinator coordinator, IAuthorizer authorizer, IGroupOffsetStore? stored = null) : IApiHandler<OffsetCommitRequest, OffsetCommitResponse>
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
        // Read on the group for the whole request, Read on each topic for its partitions, as Kafka.
        if (!authorizer.OnGroup(context, AclOperation.Read, request.GroupId))
        {
            return ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed);
        }

        var generation = context.Version >= 1 ? request.GenerationIdOrMemberEpoch : -1;
        var refused = request.Topics.Where(t => !authorizer.OnTopic(context, AclOperation.Read, t.Name)).Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        var offsets = request.Topics
            .Where(t => !refused.Contains(t.Name))
            .SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, p.CommittedOffset, p.CommittedLeaderEpoch, p.CommittedMetadata)))
            .ToList();
        var results = offsets.Count > 0 || refused.Count == 0
            ? await coordinator.CommitAsync(request.GroupId, generation, request.MemberId, request.GroupInstanceId, offsets).ConfigureAwait(false)
            : new List<(string Topic, int Partition, ErrorCode Error)>();
        if (stored is not null)
        {
            var accepted = results.Where(r => r.Error == ErrorCode.None).Select(r => (r.Topic, r.Partition)).ToHashSet();
            var toStore = offsets.Where(o => accepted.Contains((o.Name, o.PartitionIndex))).Select(o => (o.Name, o.PartitionIndex, o.CommittedOffset, o.CommittedLeaderEpoch, (string?)o.CommittedMetadata)).ToList();
            if (toStore.Count > 0 && await stored.CommitAsync(request.GroupId, toStore).ConfigureAwait(false) is var error && error != ErrorCode.None)
            {
                results = [.. results.Select(r => r.Error == ErrorCode.None ? (r.Topic, r.Partition, error) : r)];
            }
        }

        if (refused.Count > 0)
        {
            results = [.. results, .. request.Topics.Where(t => refused.Contains(t.Name)).SelectMany(t => t.Partitions.Select(p => (t.Name, p.PartitionIndex, ErrorCode.TopicAuthorizationFailed)))];
        }
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
