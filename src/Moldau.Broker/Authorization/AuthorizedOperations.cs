namespace Moldau.Broker.Authorization;

/// <summary>
/// The authorized-operations bit set of Metadata, DescribeCluster, DescribeGroups and
/// DescribeTopicPartitions (KIP-430): bit <c>n</c> set when the operation with code <c>n</c> is
/// allowed, among the operations the resource type supports.
/// </summary>
internal static class AuthorizedOperations
{
    /// <summary>The schema's default, sent when the client did not ask (Integer.MIN_VALUE).</summary>
    public const int NotRequested = int.MinValue;

    /// <summary>The name of the one cluster resource.</summary>
    public const string ClusterName = "kafka-cluster";

    // Kafka's AclEntry.supportedOperations. Groups: READ, DESCRIBE, DELETE; Kafka 4 adds the
    // config operations for group configs, which Moldau does not have.
    private static readonly AclOperation[] TopicOperations =
        [AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Describe, AclOperation.Delete, AclOperation.Alter, AclOperation.DescribeConfigs, AclOperation.AlterConfigs];

    private static readonly AclOperation[] GroupOperations = [AclOperation.Read, AclOperation.Describe, AclOperation.Delete];

    private static readonly AclOperation[] ClusterOperations =
        [AclOperation.Create, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs, AclOperation.IdempotentWrite, AclOperation.Alter, AclOperation.Describe];

    private static readonly AclOperation[] TransactionalIdOperations = [AclOperation.Describe, AclOperation.Write];

    /// <summary>The operations <paramref name="type"/> supports.</summary>
    public static IReadOnlyList<AclOperation> Supported(ResourceType type) => type switch
    {
        ResourceType.Topic => TopicOperations,
        ResourceType.Group => GroupOperations,
        ResourceType.Cluster => ClusterOperations,
        ResourceType.TransactionalId => TransactionalIdOperations,
        _ => [],
    };

    /// <summary>The bit set of the supported operations the authorizer allows on the resource.</summary>
    public static int For(IAuthorizer authorizer, RequestContext context, ResourceType type, string name)
    {
        var bits = 0;
        foreach (var operation in Supported(type))
        {
            if (authorizer.Authorize(context, operation, type, name))
            {
                bits |= 1 << (int)operation;
            }
        }

        return bits;
    }

    /// <summary>The cluster's bit set: 0 without DESCRIBE on it, as Kafka answers.</summary>
    public static int ForCluster(IAuthorizer authorizer, RequestContext context) =>
        authorizer.Authorize(context, AclOperation.Describe, ResourceType.Cluster, ClusterName)
            ? For(authorizer, context, ResourceType.Cluster, ClusterName)
            : 0;
}
