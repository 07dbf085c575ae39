using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Handlers;

/// <summary>Metadata: this node as the only broker and controller, and the topics asked for.</summary>
internal sealed class MetadataHandler(BrokerState state) : IApiHandler<MetadataRequest, MetadataResponse>
{
    private readonly DescribedTopics _described = new();
    private Func<TopicInfo, List<MetadataResponse.MetadataResponsePartition>>? _describe;

    /// <inheritdoc/>
    public ValueTask<MetadataResponse> HandleAsync(RequestContext context, MetadataRequest request, CancellationToken cancellationToken) => ValueTask.FromResult(Handle(context, request));

    /// <inheritdoc/>
    public MetadataResponse ErrorResponse(RequestContext context, MetadataRequest request, ErrorCode error) =>
        new() { ControllerId = -1, Topics = [.. (request.Topics ?? []).Select(t => new MetadataResponse.MetadataResponseTopic { Name = t.Name, TopicId = t.TopicId, ErrorCode = (short)error, TopicAuthorizedOperations = int.MinValue })] };

    public MetadataResponse Handle(RequestContext context, MetadataRequest request)
    {
        var response = Topics(context, request);

        // v8-v10 carry the cluster's operations (v11 moved them to DescribeCluster); v8+ the topics'.
        if (context.Version is >= 8 and <= 10 && request.IncludeClusterAuthorizedOperations)
        {
            response.ClusterAuthorizedOperations = AuthorizedOperations.ForCluster(state.Authorizer, context);
        }

        if (context.Version >= 8 && request.IncludeTopicAuthorizedOperations)
        {
            foreach (var topic in response.Topics.Where(t => t.Name is not null))
            {
                topic.TopicAuthorizedOperations = AuthorizedOperations.For(state.Authorizer, context, ResourceType.Topic, topic.Name!);
            }
        }

        return response;
    }

    private MetadataResponse Topics(RequestContext context, MetadataRequest request)
    {
        var version = context.Version;
        var endpoint = state.EndpointFor(context.Connection.ListenerName);
        var response = new MetadataResponse
        {
            ClusterId = state.ClusterId,
            ControllerId = state.Options.NodeId,
            Brokers = [new MetadataResponse.MetadataResponseBroker { NodeId = state.Options.NodeId, Host = endpoint.Host, Port = endpoint.Port, Rack = null }],
        };
        if (state.Cluster is { } cluster)
        {
            // Cluster mode: every live broker; the lowest id stands in as the controller.
            response.Brokers = [.. cluster.Brokers.Select(b => (Broker: b, Endpoint: b.EndpointFor(context.Connection.ListenerName)))
                .Where(b => b.Endpoint is not null)
                .Select(b => new MetadataResponse.MetadataResponseBroker { NodeId = b.Broker.Id, Host = b.Endpoint!.Host, Port = b.Endpoint.Port, Rack = b.Broker.Rack })];
            response.ControllerId = response.Brokers.Count > 0 ? response.Brokers.Min(b => b.NodeId) : state.Options.NodeId;
        }

        // v0: an empty list means every topic; v1+: null means every topic, empty means none.
        var all = request.Topics is null || (version == 0 && request.Topics.Count == 0);
        if (all)
        {
            var sorted = _described.Sorted(state.Topics.Image);
            var everything = state.Authorizer is AllowAllAuthorizer;
            response.Topics.Capacity = sorted.Length;
            foreach (var topic in sorted)
            {
                // Only the topics the principal may describe, as Kafka lists them.
                if (everything || state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.Topic, topic.Name))
                {
                    response.Topics.Add(Entry(topic));
                }
            }

            return response;
        }

        // Before v4 there was no flag, and brokers always auto-created.
        var allowAutoCreate = version < 4 || request.AllowAutoTopicCreation;
        foreach (var wanted in request.Topics!)
        {
            // The metadata log's name is never a topic, not even one a client asks to create.
            var topic = InternalTopics.IsReserved(wanted.Name) ? null
                : wanted.Name is { } name ? state.Topics.Find(name) : state.Topics.Find(wanted.TopicId);
            var describedName = wanted.Name ?? topic?.Name;
            if (describedName is not null && !state.Authorizer.Authorize(context, AclOperation.Describe, ResourceType.Topic, describedName))
            {
                // Kafka answers a name it may not describe with TOPIC_AUTHORIZATION_FAILED, and an
                // id as if it were unknown, so an id reveals nothing.
                response.Topics.Add(wanted.Name is null
                    ? new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.UnknownTopicId, TopicId = wanted.TopicId }
                    : new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, Name = wanted.Name, TopicId = wanted.TopicId });
                continue;
            }

            if (topic is null && wanted.Name is { } newName && !InternalTopics.IsReserved(newName) && allowAutoCreate && state.Options.AutoCreateTopicsEnable)
            {
                // Auto-creation needs Create on the cluster or the topic, as CreateTopics does.
                if (!state.Authorizer.Authorize(context, AclOperation.Create, ResourceType.Cluster, AuthorizedOperations.ClusterName)
                    && !state.Authorizer.Authorize(context, AclOperation.Create, ResourceType.Topic, newName))
                {
                    response.Topics.Add(new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)ErrorCode.TopicAuthorizationFailed, Name = newName });
                    continue;
                }

                // An internal topic is created with the broker's settings for it, never with num.partitions.
                var (error, created) = InternalTopics.IsInternal(newName)
                    ? (ErrorCode.None, state.Topics.FindOrCreateInternal(newName))
                    : state.Topics.Create(newName, state.Options.NumPartitions);
                error = created is null && error == ErrorCode.None ? ErrorCode.LeaderNotAvailable : error;
                topic = created;
                if (created is null)
                {
                    response.Topics.Add(new MetadataResponse.MetadataResponseTopic { ErrorCode = (short)error, Name = newName });
                    continue;
                }
            }

            if (topic is null)
            {
                var invalid = wanted.Name is { } n && !TopicNames.IsValid(n);
                response.Topics.Add(new MetadataResponse.MetadataResponseTopic
                {
                    ErrorCode = (short)(invalid ? ErrorCode.InvalidTopicException : wanted.Name is null ? ErrorCode.UnknownTopicId : ErrorCode.UnknownTopicOrPartition),
                    Name = wanted.Name,
                    TopicId = wanted.TopicId,
                });
                continue;
            }

            response.Topics.Add(Entry(topic));
        }

        return response;
    }

    /// <summary>The topic's entry, its partitions shared with other responses while all are online (<see cref="DescribedTopics"/>).</summary>
    private MetadataResponse.MetadataResponseTopic Entry(TopicInfo topic) => new()
    {
        Name = topic.Name,
        TopicId = topic.Id,
        IsInternal = topic.IsInternal,
        Partitions = _described.Partitions(topic, _describe ??= t => Describe(t).Partitions),
    };

    private MetadataResponse.MetadataResponseTopic Describe(TopicInfo topic)
    {
        var node = state.Options.NodeId;
        var result = new MetadataResponse.MetadataResponseTopic { Name = topic.Name, TopicId = topic.Id, IsInternal = topic.IsInternal };
        foreach (var p in topic.Partitions)
        {
            // A partition whose log can't be opened is shown as Kafka shows one on a failed log
            // dir: no leader, LEADER_NOT_AVAILABLE, this node among the offline replicas. One whose
            // log start-up has not opened yet is online: the broker serves it (opening it on demand).
            var offline = p.IsOffline && state.Topics.LogOf(p) is null;

            // Cluster mode: the leader the catalog's hash chose (internal topics are this broker's own).
            var leader = state.Cluster is not null && !topic.IsInternal ? p.Leader : node;
            result.Partitions.Add(new MetadataResponse.MetadataResponsePartition
            {
                ErrorCode = (short)(offline ? ErrorCode.LeaderNotAvailable : ErrorCode.None),
                PartitionIndex = p.Index,
                LeaderId = offline ? -1 : leader,
                LeaderEpoch = p.LeaderEpoch,
                ReplicaNodes = [leader],
                IsrNodes = [leader],
                OfflineReplicas = offline ? [leader] : [],
            });
        }

        return result;
    }
}
