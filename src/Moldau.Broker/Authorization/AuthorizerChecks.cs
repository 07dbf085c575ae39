namespace Moldau.Broker.Authorization;

/// <summary>Checks that several APIs make alike, worded once.</summary>
internal static class AuthorizerChecks
{
    /// <summary>Whether the principal may <paramref name="operation"/> the cluster.</summary>
    public static bool OnCluster(this IAuthorizer authorizer, RequestContext context, AclOperation operation) =>
        authorizer.Authorize(context, operation, ResourceType.Cluster, AuthorizedOperations.ClusterName);

    /// <summary>Whether the principal may create topic <paramref name="name"/>: Create on the cluster or on the topic, as Kafka's CreateTopics and auto-creation check.</summary>
    public static bool MayCreateTopic(this IAuthorizer authorizer, RequestContext context, string name) =>
        authorizer.OnCluster(context, AclOperation.Create) || authorizer.Authorize(context, AclOperation.Create, ResourceType.Topic, name);

    /// <summary>Whether the principal may <paramref name="operation"/> topic <paramref name="name"/>.</summary>
    public static bool OnTopic(this IAuthorizer authorizer, RequestContext context, AclOperation operation, string name) =>
        authorizer.Authorize(context, operation, ResourceType.Topic, name);

    /// <summary>Whether the principal may <paramref name="operation"/> group <paramref name="groupId"/>.</summary>
    public static bool OnGroup(this IAuthorizer authorizer, RequestContext context, AclOperation operation, string groupId) =>
        authorizer.Authorize(context, operation, ResourceType.Group, groupId);

    /// <summary>
    /// The error for a config resource the principal may not <paramref name="operation"/>
    /// (DescribeConfigs or AlterConfigs): TOPIC_AUTHORIZATION_FAILED for a topic,
    /// CLUSTER_AUTHORIZATION_FAILED for a broker (its configs are the cluster's), or
    /// <see cref="Protocol.ErrorCode.None"/> when allowed or not a type checked here.
    /// </summary>
    public static Protocol.ErrorCode ConfigResourceError(this IAuthorizer authorizer, RequestContext context, AclOperation operation, sbyte resourceType, string name) => resourceType switch
    {
        Topics.TopicRegistry.TopicResource when !authorizer.OnTopic(context, operation, name) => Protocol.ErrorCode.TopicAuthorizationFailed,
        Topics.TopicRegistry.BrokerResource when !authorizer.OnCluster(context, operation) => Protocol.ErrorCode.ClusterAuthorizationFailed,
        _ => Protocol.ErrorCode.None,
    };
}
