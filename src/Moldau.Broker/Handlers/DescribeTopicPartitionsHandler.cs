using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// DescribeTopicPartitions (KIP-966): topics sorted by name, partitions in index order, at most
/// response_partition_limit partitions per response; the cursor says where to go on.
/// </summary>
internal sealed class DescribeTopicPartitionsHandler(BrokerState state) : IApiHandler<DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DescribeTopicPartitionsResponse> HandleAsync(RequestContext context, DescribeTopicPartitionsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DescribeTopicPartitionsResponse ErrorResponse(RequestContext context, DescribeTopicPartitionsRequest request, ErrorCode error) =>
        new() { Topics = [.. request.Topics.Select(t => new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic { Name = t.Name, ErrorCode = (short)error, TopicAuthorizedOperations = int.MinValue })] };

    public DescribeTopicPartitionsResponse Handle(RequestContext context, DescribeTopicPartitionsRequest request)
    {
        var response = new DescribeTopicPartitionsResponse();
        // Every topic: those the principal may describe; named ones it may not: TOPIC_AUTHORIZATION_FAILED.
        var names = request.Topics.Count == 0
            ? state.Topics.Topics.Select(t => t.Name).Where(n => state.Authorizer.OnTopic(context, AclOperation.Describe, n))
            : request.Topics.Select(t => t.Name);
        var sorted = names.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var limit = request.ResponsePartitionLimit > 0 ? request.ResponsePartitionLimit : 2000;
        var cursor = request.Cursor;
        var remaining = limit;
        var node = state.Options.NodeId;

        foreach (var name in sorted)
        {
            if (cursor is not null && string.CompareOrdinal(name, cursor.TopicName) < 0)
            {
                continue;
            }

            if (!state.Authorizer.OnTopic(context, AclOperation.Describe, name))
            {
                response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
                {
                    ErrorCode = (short)ErrorCode.TopicAuthorizationFailed,
                    Name = name,
                    TopicId = Uuid.Zero,
                });
                continue;
            }

            var topic = state.Topics.Find(name);
            if (topic is null)
            {
                response.Topics.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
                {
                    ErrorCode = (short)(TopicNames.IsValid(name) ? ErrorCode.UnknownTopicOrPartition : ErrorCode.InvalidTopicException),
                    Name = name,
                    TopicId = Uuid.Zero,
                });
                continue;
            }

            var first = cursor is not null && name == cursor.TopicName ? Math.Max(0, cursor.PartitionIndex) : 0;
            if (remaining == 0)
            {
                response.NextCursor = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = first };
                break;
            }

            var entry = new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponseTopic
            {
                Name = topic.Name,
                TopicId = topic.Id,
                IsInternal = topic.IsInternal,

                // Kafka answers these always here: the API has no flag for them.
                TopicAuthorizedOperations = AuthorizedOperations.For(state.Authorizer, context, ResourceType.Topic, topic.Name),
            };
            response.Topics.Add(entry);
            var partitions = topic.Partitions;
            for (var i = first; i < partitions.Length; i++)
            {
                if (remaining == 0)
                {
                    response.NextCursor = new DescribeTopicPartitionsResponse.Cursor { TopicName = name, PartitionIndex = i };
                    break;
                }

                var p = partitions[i];
                var offline = p.IsOffline && state.Topics.LogOf(p) is null;
                entry.Partitions.Add(new DescribeTopicPartitionsResponse.DescribeTopicPartitionsResponsePartition
                {
                    ErrorCode = (short)(offline ? ErrorCode.LeaderNotAvailable : ErrorCode.None),
                    PartitionIndex = p.Index,
                    LeaderId = offline ? -1 : node,
                    LeaderEpoch = p.LeaderEpoch,
                    ReplicaNodes = [node],
                    IsrNodes = [node],
                    EligibleLeaderReplicas = [],
                    LastKnownElr = [],
                    OfflineReplicas = offline ? [node] : [],
                });
                remaining--;
            }

            if (response.NextCursor is not null)
            {
                break;
            }
        }

        return response;
    }
}
