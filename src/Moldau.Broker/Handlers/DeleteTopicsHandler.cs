using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>DeleteTopics by name (v0-v5 names, v6+ names or ids).</summary>
internal sealed class DeleteTopicsHandler(BrokerState state) : IApiHandler<DeleteTopicsRequest, DeleteTopicsResponse>
{
    /// <inheritdoc/>
    public ValueTask<DeleteTopicsResponse> HandleAsync(RequestContext context, DeleteTopicsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public DeleteTopicsResponse ErrorResponse(RequestContext context, DeleteTopicsRequest request, ErrorCode error) =>
        new() { Responses = [.. request.Topics.Select(t => new DeleteTopicsResponse.DeletableTopicResult { Name = t.Name, TopicId = t.TopicId, ErrorCode = (short)error }), .. request.TopicNames.Select(n => new DeleteTopicsResponse.DeletableTopicResult { Name = n, ErrorCode = (short)error })] };

    public DeleteTopicsResponse Handle(RequestContext context, DeleteTopicsRequest request)
    {
        var response = new DeleteTopicsResponse();
        var quota = state.Quotas.MutationQuotaFor(context, strict: context.Version >= 5);
        var wanted = context.Version >= 6
            ? request.Topics.Select(t => (t.Name, t.TopicId))
            : request.TopicNames.Select(n => ((string?)n, Uuid.Zero));
        foreach (var (name, id) in wanted)
        {
            var topic = name is not null ? state.Topics.Find(name) : state.Topics.Find(id);
            var result = new DeleteTopicsResponse.DeletableTopicResult { Name = name ?? topic?.Name, TopicId = topic?.Id ?? id };
            response.Responses.Add(result);
            if (name is null && topic is not null && !state.Authorizer.OnTopic(context, AclOperation.Describe, topic.Name))
            {
                // An id the principal may not describe reveals nothing, as in Kafka.
                result.Name = null;
                result.ErrorCode = (short)ErrorCode.UnknownTopicId;
                continue;
            }

            if ((name ?? topic?.Name) is { } checkedName && !state.Authorizer.OnTopic(context, AclOperation.Delete, checkedName))
            {
                result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                result.ErrorMessage = "Authorization failed.";
                continue;
            }
            if (topic is null)
            {
                result.ErrorCode = (short)(name is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition);
                result.ErrorMessage = "This server does not host this topic.";
                continue;
            }

            if (quota?.TryRecord(topic.Partitions.Length) == false)
            {
                result.ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded;
                result.ErrorMessage = Quotas.MutationQuota.ExceededMessage;
                continue;
            }

            result.ErrorCode = (short)state.Topics.Delete(topic);
        }

        response.ThrottleTimeMs = quota?.ThrottleTimeMs ?? 0;
        return response;
    }
}
