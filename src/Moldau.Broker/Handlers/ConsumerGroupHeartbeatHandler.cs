using System.Net;
using Moldau.Broker.Authorization;
using Moldau.Coordinator;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>
/// ConsumerGroupHeartbeat (KIP-848): a member of a consumer-protocol group joins, heartbeats and
/// leaves; the coordinator answers with its epoch and its assignment. READ on the group, and
/// DESCRIBE on every subscribed topic name, as Kafka checks them.
/// </summary>
internal sealed class ConsumerGroupHeartbeatHandler(GroupCoordinator coordinator, IAuthorizer authorizer) : IApiHandler<ConsumerGroupHeartbeatRequest, ConsumerGroupHeartbeatResponse>
{
    /// <inheritdoc/>
    public ValueTask<ConsumerGroupHeartbeatResponse> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request, CancellationToken cancellationToken)
    {
        if (!authorizer.OnGroup(context, AclOperation.Read, request.GroupId))
        {
            return ValueTask.FromResult(ErrorResponse(context, request, ErrorCode.GroupAuthorizationFailed));
        }

        if (request.SubscribedTopicNames is { Count: > 0 } names && names.Any(t => !authorizer.OnTopic(context, AclOperation.Describe, t)))
        {
            return ValueTask.FromResult(ErrorResponse(context, request, ErrorCode.TopicAuthorizationFailed));
        }

        return new(HandleAsync(context, request));
    }

    /// <inheritdoc/>
    public ConsumerGroupHeartbeatResponse ErrorResponse(RequestContext context, ConsumerGroupHeartbeatRequest request, ErrorCode error) =>
        new() { ErrorCode = (short)error, MemberEpoch = -1 };

    private async Task<ConsumerGroupHeartbeatResponse> HandleAsync(RequestContext context, ConsumerGroupHeartbeatRequest request)
    {
        var host = context.Connection.Remote is IPEndPoint ip ? "/" + ip.Address : "/unknown";
        var result = await coordinator.ConsumerHeartbeatAsync(new ConsumerHeartbeatRequest(
            request.GroupId,
            request.MemberId,
            request.MemberEpoch,
            request.InstanceId,
            request.RackId,
            request.RebalanceTimeoutMs,
            request.SubscribedTopicNames,
            context.Version >= 1 ? request.SubscribedTopicRegex : null,
            request.ServerAssignor,
            request.TopicPartitions?.Select(t => (t.TopicId, (IReadOnlyList<int>)t.Partitions)).ToList(),
            context.Header.ClientId ?? string.Empty,
            host)).ConfigureAwait(false);
        return new ConsumerGroupHeartbeatResponse
        {
            ErrorCode = (short)result.Error,
            ErrorMessage = result.Message,
            MemberId = result.MemberId,
            MemberEpoch = result.MemberEpoch,
            HeartbeatIntervalMs = result.HeartbeatIntervalMs,
            Assignment = result.Assignment is { } assignment
                ? new ConsumerGroupHeartbeatResponse.AssignmentData
                {
                    TopicPartitions = assignment.Select(t => new ConsumerGroupHeartbeatResponse.TopicPartitions { TopicId = t.TopicId, Partitions = [.. t.Partitions] }).ToList(),
                }
                : null,
        };
    }
}
