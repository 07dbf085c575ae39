using Moldau.Broker.Authorization;
using Moldau.Broker.Cluster;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// OffsetFetch: one group (v0-v7) or a batch of groups (v8+); -1 where nothing was committed. In
/// cluster mode the offsets stored in PostgreSQL (<paramref name="stored"/>) take precedence over
/// this broker's own, which miss what another coordinator of the group committed.
/// </summary>
internal sealed class OffsetFetchHandler(GroupCoordinator coordinator, IAuthorizer authorizer, IGroupOffsetStore? stored = null) : IApiHandler<OffsetFetchRequest, OffsetFetchResponse>
{
    /// <inheritdoc/>
    public ValueTask<OffsetFetchResponse> HandleAsync(RequestContext context, OffsetFetchRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

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

    /// <summary>The work, once the pipeline has decoded the request.</summary>
    public async Task<OffsetFetchResponse> HandleAsync(RequestContext context, OffsetFetchRequest request)
    {
        if (context.Version >= 8)
        {
            var response = new OffsetFetchResponse();
            // Every group's read is queued before any is awaited: groups on different shards are read at once.
            var fetches = request.Groups.Select(g => authorizer.OnGroup(context, AclOperation.Describe, g.GroupId)
                ? coordinator.FetchAsync(g.GroupId, g.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList(), request.RequireStable)
                : null).ToList();
            for (var i = 0; i < request.Groups.Count; i++)
            {
                var g = request.Groups[i];
                if (fetches[i] is not { } fetch)
                {
                    response.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
                    continue;
                }

                var fetched = await WithStoredAsync(g.GroupId, await fetch.ConfigureAwait(false), g.Topics is null).ConfigureAwait(false);
                // v9 (KIP-848): a consumer-protocol member fetches with its id and epoch, checked as Kafka does.
                if (context.Version >= 9 && (g.MemberId is not null || g.MemberEpoch >= 0)
                    && await coordinator.ValidateOffsetFetchAsync(g.GroupId, g.MemberId, g.MemberEpoch).ConfigureAwait(false) is var invalid && invalid != ErrorCode.None)
                {
                    response.Groups.Add(new OffsetFetchResponse.OffsetFetchResponseGroup { GroupId = g.GroupId, ErrorCode = (short)invalid });
                    continue;
                }

                var offsets = Visible(context, fetched, g.Topics is not null);
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
                            ErrorCode = (short)o.Error,
                        }).ToList(),
                    }).ToList(),
                });
            }

            return response;
        }

        if (!authorizer.OnGroup(context, AclOperation.Describe, request.GroupId))
        {
            return ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed);
        }

        var local = await coordinator.FetchAsync(request.GroupId, request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList(), context.Version >= 7 && request.RequireStable).ConfigureAwait(false);
        var single = Visible(context, await WithStoredAsync(request.GroupId, local, request.Topics is null).ConfigureAwait(false), request.Topics is not null);
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
                    ErrorCode = (short)o.Error,
                }).ToList(),
            }).ToList(),
        };
    }

    /// <summary>
    /// Cluster mode: each partition's offset as PostgreSQL stores it (where it stores one), and for
    /// "all topics" the stored partitions this broker does not know; a retriable
    /// COORDINATOR_NOT_AVAILABLE for every partition when PostgreSQL can't be read.
    /// </summary>
    private async Task<List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)>> WithStoredAsync(string groupId, List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)> local, bool all)
    {
        if (stored is null)
        {
            return local;
        }

        if (await stored.LoadAsync(groupId).ConfigureAwait(false) is not { } offsets)
        {
            return [.. local.Select(l => (l.Topic, l.Partition, (CommittedOffset?)null, l.Error == ErrorCode.None ? ErrorCode.CoordinatorNotAvailable : l.Error))];
        }

        var result = new List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)>(local.Count);
        var seen = new HashSet<(string, int)>();
        foreach (var l in local)
        {
            seen.Add((l.Topic, l.Partition));
            result.Add(l.Error == ErrorCode.None && offsets.TryGetValue((l.Topic, l.Partition), out var s)
                ? (l.Topic, l.Partition, new CommittedOffset(s.Offset, s.LeaderEpoch, s.Metadata ?? string.Empty, s.CommitTimestamp), ErrorCode.None)
                : l);
        }

        if (all)
        {
            foreach (var ((topic, partition), s) in offsets.OrderBy(o => o.Key.Topic, StringComparer.Ordinal).ThenBy(o => o.Key.Partition))
            {
                if (!seen.Contains((topic, partition)))
                {
                    result.Add((topic, partition, new CommittedOffset(s.Offset, s.LeaderEpoch, s.Metadata ?? string.Empty, s.CommitTimestamp), ErrorCode.None));
                }
            }
        }

        return result;
    }

    /// <summary>
    /// The offsets of topics the principal may describe: asked-for topics it may not describe get
    /// TOPIC_AUTHORIZATION_FAILED, and from "all topics" they are left out, as Kafka answers.
    /// </summary>
    private List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)> Visible(RequestContext context, List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)> offsets, bool named)
    {
        var result = new List<(string Topic, int Partition, CommittedOffset? Offset, ErrorCode Error)>(offsets.Count);
        foreach (var (topic, partition, offset, error) in offsets)
        {
            if (authorizer.OnTopic(context, AclOperation.Describe, topic))
            {
                result.Add((topic, partition, offset, error));
            }
            else if (named)
            {
                result.Add((topic, partition, null, ErrorCode.TopicAuthorizationFailed));
            }
        }

        return result;
    }
}
