using Moldau.Broker.Authorization;
using Moldau.Broker.Configuration;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>CreateTopics: -1 partitions means num.partitions; one node can hold one replica.</summary>
internal sealed class CreateTopicsHandler(BrokerState state) : IApiHandler<CreateTopicsRequest, CreateTopicsResponse>
{
    /// <inheritdoc/>
    public ValueTask<CreateTopicsResponse> HandleAsync(RequestContext context, CreateTopicsRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request, state.Quotas.MutationQuotaFor(context, strict: context.Version >= 6)));

    /// <inheritdoc/>
    public CreateTopicsResponse ErrorResponse(RequestContext context, CreateTopicsRequest request, ErrorCode error) =>
        new() { Topics = [.. request.Topics.Select(t => new CreateTopicsResponse.CreatableTopicResult { Name = t.Name, ErrorCode = (short)error, NumPartitions = -1, ReplicationFactor = -1 })] };

    /// <summary>One request can't make a single node lay out millions of directories.</summary>
    public const int MaxPartitions = 10_000;

    public CreateTopicsResponse Handle(RequestContext context, CreateTopicsRequest request, Quotas.MutationQuota? quota = null)
    {
        var response = new CreateTopicsResponse();

        // A name given twice is refused once and not created, as Kafka's controller does.
        var duplicates = request.Topics.GroupBy(t => t.Name, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key).ToHashSet(StringComparer.Ordinal);
        var answered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var t in request.Topics)
        {
            if (duplicates.Contains(t.Name) && !answered.Add(t.Name))
            {
                continue;
            }

            var result = new CreateTopicsResponse.CreatableTopicResult { Name = t.Name, ErrorMessage = null, Configs = null };
            response.Topics.Add(result);
            var (error, message) = duplicates.Contains(t.Name) ? (ErrorCode.InvalidRequest, "Duplicate topic name.")
                : !state.Authorizer.MayCreateTopic(context, t.Name) ? (ErrorCode.TopicAuthorizationFailed, "Authorization failed.")
                : Validate(t);
            var (partitions, configs) = error != ErrorCode.None ? (0, [])
                : InternalTopics.IsInternal(t.Name) ? InternalTopics.Settings(t.Name, state.Options) // only ever created with the broker's settings for it
                : (Partitions(t), t.Configs.ToDictionary(c => c.Name, c => c.Value!, StringComparer.Ordinal));
            if (error == ErrorCode.None && !request.ValidateOnly && quota?.TryRecord(partitions) == false)
            {
                (error, message) = (ErrorCode.ThrottlingQuotaExceeded, Quotas.MutationQuota.ExceededMessage);
            }

            if (error == ErrorCode.None && !request.ValidateOnly)
            {
                var (created, topic) = state.Topics.Create(t.Name, partitions, configs);
                error = created;
                message = created switch
                {
                    ErrorCode.TopicAlreadyExists => $"Topic '{t.Name}' already exists.",
                    ErrorCode.InvalidTopicException => CollisionMessage(t.Name),
                    ErrorCode.KafkaStorageError => $"The logs of topic '{t.Name}' could not be created on this broker's storage; nothing was created.",
                    _ => null,
                };
                if (topic is not null && created == ErrorCode.None)
                {
                    result.TopicId = topic.Id;
                }
            }

            result.ErrorCode = (short)error;
            result.ErrorMessage = message;
            if (error == ErrorCode.None)
            {
                result.NumPartitions = partitions;
                result.ReplicationFactor = 1;
                result.Configs = Described(configs);
            }
        }

        response.ThrottleTimeMs = quota?.ThrottleTimeMs ?? 0;
        return response;
    }

    /// <summary>The new topic's configs in force, every key with its source, as Kafka answers CreateTopics v5+ (KIP-525).</summary>
    private List<CreateTopicsResponse.CreatableTopicConfigs> Described(IReadOnlyDictionary<string, string> configs)
    {
        var layers = state.Topics.ConfigLayersOf(null) with { Topic = configs };
        return TopicConfigDefinitions.All.Values.Select(d =>
        {
            var (value, source) = ConfigResolver.Topic(d.Name, layers);
            return new CreateTopicsResponse.CreatableTopicConfigs { Name = d.Name, Value = value, ReadOnly = d.ReadOnly, ConfigSource = (sbyte)source };
        }).ToList();
    }

    private string CollisionMessage(string name) =>
        $"Topic '{name}' collides with existing topic: {state.Topics.CollidesWith(name)}";

    private int Partitions(CreateTopicsRequest.CreatableTopic t) =>
        t.Assignments.Count > 0 ? t.Assignments.Count : t.NumPartitions == -1 ? state.Options.NumPartitions : t.NumPartitions;

    private (ErrorCode, string?) Validate(CreateTopicsRequest.CreatableTopic t)
    {
        if (InternalTopics.IsReserved(t.Name))
        {
            return (ErrorCode.InvalidRequest, $"Creation of internal topic {t.Name} is prohibited.");
        }

        if (!TopicNames.IsValid(t.Name))
        {
            return (ErrorCode.InvalidTopicException, $"Topic name '{t.Name}' is illegal: it must be 1-249 characters of [a-zA-Z0-9._-] and not '.' or '..'.");
        }

        if (state.Topics.Find(t.Name) is not null)
        {
            return (ErrorCode.TopicAlreadyExists, $"Topic '{t.Name}' already exists.");
        }

        if (state.Topics.CollidesWith(t.Name) is not null)
        {
            return (ErrorCode.InvalidTopicException, CollisionMessage(t.Name));
        }

        // Configs are checked as AlterConfigs checks them (one definition, TopicConfigDefinitions), and
        // before the partition layout, as Kafka's controller does.
        if (t.Configs.Where(c => c.Value is null).Select(c => c.Name).ToList() is { Count: > 0 } nulls)
        {
            return (ErrorCode.InvalidConfig, $"Null value not supported for topic configs: {string.Join(",", nulls)}");
        }

        if (t.Configs.GroupBy(c => c.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1) is { } repeated)
        {
            return (ErrorCode.InvalidRequest, $"Duplicate config name {repeated.Key} for topic {t.Name}.");
        }

        if (t.Configs.Select(c => TopicConfigDefinitions.Validate(c.Name, c.Value)).FirstOrDefault(m => m is not null) is { } invalid)
        {
            return (ErrorCode.InvalidConfig, invalid);
        }

        var given = t.Configs.ToDictionary(c => c.Name, c => c.Value!, StringComparer.Ordinal);
        if (ConfigResolver.Conflict(state.Topics.ConfigLayersOf(null) with { Topic = given }) is { } conflict)
        {
            return (ErrorCode.InvalidConfig, conflict);
        }

        if (t.Assignments.Count > MaxPartitions)
        {
            return (ErrorCode.InvalidPartitions, $"Number of partitions {t.Assignments.Count} is above Moldau's limit of {MaxPartitions} per topic.");
        }

        if (t.Assignments.Count > 0)
        {
            if (t.NumPartitions != -1 || t.ReplicationFactor != -1)
            {
                return (ErrorCode.InvalidRequest, "Both numPartitions or replicationFactor and replicasAssignments were set.");
            }

            foreach (var a in t.Assignments)
            {
                if (a.BrokerIds.Count != 1 || a.BrokerIds[0] != state.Options.NodeId)
                {
                    return (ErrorCode.InvalidReplicaAssignment, $"Partition {a.PartitionIndex} must be assigned to broker {state.Options.NodeId}, the only one.");
                }
            }

            return (ErrorCode.None, null);
        }

        if (t.NumPartitions == 0 || t.NumPartitions < -1)
        {
            return (ErrorCode.InvalidPartitions, "Number of partitions must be larger than 0.");
        }

        if (t.NumPartitions > MaxPartitions)
        {
            return (ErrorCode.InvalidPartitions, $"Number of partitions {t.NumPartitions} is above Moldau's limit of {MaxPartitions} per topic.");
        }

        if (t.ReplicationFactor == 0 || t.ReplicationFactor < -1)
        {
            return (ErrorCode.InvalidReplicationFactor, "Replication factor must be larger than 0.");
        }

        if (t.ReplicationFactor > 1)
        {
            return (ErrorCode.InvalidReplicationFactor, $"Unable to replicate the partition {t.ReplicationFactor} time(s): The target replication factor of {t.ReplicationFactor} cannot be reached because only 1 broker(s) are registered.");
        }

        return (ErrorCode.None, null);
    }
}
