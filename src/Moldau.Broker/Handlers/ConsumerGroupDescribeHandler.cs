using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// ConsumerGroupDescribe (KIP-848): consumer-protocol groups with their members, epochs and
/// assignments; a classic or unknown group answers GROUP_ID_NOT_FOUND. DESCRIBE on the group,
/// and DESCRIBE on the topics its members are assigned (TOPIC_AUTHORIZATION_FAILED otherwise),
/// as Kafka checks them.
/// </summary>
internal sealed class ConsumerGroupDescribeHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse>
{
    /// <inheritdoc/>
    public ValueTask<ConsumerGroupDescribeResponse> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request, CancellationToken cancellationToken) => new(HandleAsync(context, request));

    /// <inheritdoc/>
    public ConsumerGroupDescribeResponse ErrorResponse(RequestContext context, ConsumerGroupDescribeRequest request, ErrorCode error) =>
        new() { Groups = [.. request.GroupIds.Select(g => new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = g, ErrorCode = (short)error })] };

    private async Task<ConsumerGroupDescribeResponse> HandleAsync(RequestContext context, ConsumerGroupDescribeRequest request)
    {
        var response = new ConsumerGroupDescribeResponse();
        var described = request.GroupIds.Select(g => authorizer.OnGroup(context, AclOperation.Describe, g) ? coordinator.DescribeConsumerGroupAsync(g) : null).ToList();
        for (var i = 0; i < request.GroupIds.Count; i++)
        {
            if (described[i] is not { } pending)
            {
                response.Groups.Add(new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = request.GroupIds[i], ErrorCode = (short)ErrorCode.GroupAuthorizationFailed });
                continue;
            }

            var d = await pending.ConfigureAwait(false);
            if (d.Error != ErrorCode.None)
            {
                response.Groups.Add(new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = d.GroupId, ErrorCode = (short)d.Error, ErrorMessage = $"Group {d.GroupId} not found.", GroupState = d.State });
                continue;
            }

            var topics = d.Members.SelectMany(m => m.Assigned.Concat(m.Target)).Select(t => t.TopicName).Distinct(StringComparer.Ordinal);
            if (topics.Any(t => !authorizer.OnTopic(context, AclOperation.Describe, t)))
            {
                response.Groups.Add(new ConsumerGroupDescribeResponse.DescribedGroup { GroupId = d.GroupId, ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, ErrorMessage = "The group has described topic(s) that the client is not authorized to describe." });
                continue;
            }

            response.Groups.Add(new ConsumerGroupDescribeResponse.DescribedGroup
            {
                GroupId = d.GroupId,
                GroupState = d.State,
                GroupEpoch = d.Epoch,
                AssignmentEpoch = d.AssignmentEpoch,
                AssignorName = d.Assignor,
                Members = d.Members.Select(m => new ConsumerGroupDescribeResponse.Member
                {
                    MemberId = m.MemberId,
                    InstanceId = m.InstanceId,
                    RackId = m.RackId,
                    MemberEpoch = m.MemberEpoch,
                    ClientId = m.ClientId,
                    ClientHost = m.ClientHost,
                    SubscribedTopicNames = [.. m.SubscribedTopicNames],
                    SubscribedTopicRegex = m.SubscribedTopicRegex,
                    Assignment = Assignment(m.Assigned),
                    TargetAssignment = Assignment(m.Target),
                }).ToList(),
            });
        }

        return response;
    }

    private static ConsumerGroupDescribeResponse.Assignment Assignment(IReadOnlyList<(Uuid TopicId, string TopicName, IReadOnlyList<int> Partitions)> partitions) => new()
    {
        TopicPartitions = partitions.Select(t => new ConsumerGroupDescribeResponse.TopicPartitions { TopicId = t.TopicId, TopicName = t.TopicName, Partitions = [.. t.Partitions] }).ToList(),
    };
}
