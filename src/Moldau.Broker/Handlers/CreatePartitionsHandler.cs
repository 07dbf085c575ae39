using Moldau.Broker.Authorization;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>CreatePartitions: grows topics; a count not above the current one is INVALID_PARTITIONS.</summary>
internal sealed class CreatePartitionsHandler(BrokerState state) : IApiHandler<CreatePartitionsRequest, CreatePartitionsResponse>
{
    /// <inheritdoc/>
    public ValueTask<CreatePartitionsResponse> HandleAsync(RequestContext context, CreatePartitionsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request, state.Quotas.MutationQuotaFor(context, strict: context.Version >= 3)));

    /// <inheritdoc/>
    public CreatePartitionsResponse ErrorResponse(RequestContext context, CreatePartitionsRequest request, ErrorCode error) =>
        new() { Results = [.. request.Topics.Select(t => new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name, ErrorCode = (short)error })] };

    public CreatePartitionsResponse Handle(RequestContext context, CreatePartitionsRequest request, Quotas.MutationQuota? quota = null)
    {
        var response = new CreatePartitionsResponse();
        foreach (var t in request.Topics)
        {
            var result = new CreatePartitionsResponse.CreatePartitionsTopicResult { Name = t.Name };
            response.Results.Add(result);
            if (!state.Authorizer.OnTopic(context, AclOperation.Alter, t.Name))
            {
                result.ErrorCode = (short)ErrorCode.TopicAuthorizationFailed;
                result.ErrorMessage = "Authorization failed.";
                continue;
            }

            var topic = state.Topics.Find(t.Name);
            if (topic is null)
            {
                result.ErrorCode = (short)ErrorCode.UnknownTopicOrPartition;
                result.ErrorMessage = $"Topic '{t.Name}' does not exist.";
                continue;
            }

            if (t.Count > CreateTopicsHandler.MaxPartitions)
            {
                result.ErrorCode = (short)ErrorCode.InvalidPartitions;
                result.ErrorMessage = $"Number of partitions {t.Count} is above Moldau's limit of {CreateTopicsHandler.MaxPartitions} per topic.";
                continue;
            }

            if (t.Count <= topic.Partitions.Length)
            {
                result.ErrorCode = (short)ErrorCode.InvalidPartitions;
                result.ErrorMessage = $"Topic currently has {topic.Partitions.Length} partitions, which is higher than or equal to the requested {t.Count}.";
                continue;
            }

            if (t.Assignments is { } assignments && assignments.Any(a => a.BrokerIds.Count != 1 || a.BrokerIds[0] != state.Options.NodeId))
            {
                result.ErrorCode = (short)ErrorCode.InvalidReplicaAssignment;
                result.ErrorMessage = $"New partitions must be assigned to broker {state.Options.NodeId}, the only one.";
                continue;
            }

            if (!request.ValidateOnly)
            {
                if (quota?.TryRecord(t.Count - topic.Partitions.Length) == false)
                {
                    result.ErrorCode = (short)ErrorCode.ThrottlingQuotaExceeded;
                    result.ErrorMessage = Quotas.MutationQuota.ExceededMessage;
                    continue;
                }

                result.ErrorCode = (short)state.Topics.AddPartitions(topic, t.Count);
            }
        }

        response.ThrottleTimeMs = quota?.ThrottleTimeMs ?? 0;
        return response;
    }
}
