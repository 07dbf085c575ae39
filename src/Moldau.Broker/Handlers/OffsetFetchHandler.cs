using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>OffsetFetch: one group (v0-v7) or a batch of groups (v8+); -1 where nothing was committed.</summary>
internal sealed class OffsetFetchHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<OffsetFetchRequest, OffsetFetchResponse>
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

                var fetched = await fetch.ConfigureAwait(false);
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

        var single = Visible(context, await coordinator.FetchAsync(request.GroupId, request.Topics?.Select(t => (t.Name, (IReadOnlyList<int>)t.PartitionIndexes)).ToList(), context.Version >= 7 && request.RequireStable).ConfigureAwait(false), request.Topics is not null);
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
