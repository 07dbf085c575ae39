namespace Moldau.Broker.Authorization;

/// <summary>Kafka's ACL operations, with the codes that make up an authorized-operations bit set.</summary>
internal enum AclOperation : byte
{
    /// <summary>UNKNOWN</summary>
    Unknown = 0,

    /// <summary>ANY (a filter only)</summary>
    Any = 1,

    /// <summary>ALL</summary>
    All = 2,

    /// <summary>READ</summary>
    Read = 3,

    /// <summary>WRITE</summary>
    Write = 4,

    /// <summary>CREATE</summary>
    Create = 5,

    /// <summary>DELETE</summary>
    Delete = 6,

    /// <summary>ALTER</summary>
    Alter = 7,

    /// <summary>DESCRIBE</summary>
    Describe = 8,

    /// <summary>CLUSTER_ACTION</summary>
    ClusterAction = 9,

    /// <summary>DESCRIBE_CONFIGS</summary>
    DescribeConfigs = 10,

    /// <summary>ALTER_CONFIGS</summary>
    AlterConfigs = 11,

    /// <summary>IDEMPOTENT_WRITE</summary>
    IdempotentWrite = 12,

    /// <summary>CREATE_TOKENS</summary>
    CreateTokens = 13,

    /// <summary>DESCRIBE_TOKENS</summary>
    DescribeTokens = 14,
}

/// <summary>Kafka's resource types, with their codes.</summary>
internal enum ResourceType : byte
{
    /// <summary>TOPIC</summary>
    Topic = 2,

    /// <summary>GROUP</summary>
    Group = 3,

    /// <summary>CLUSTER (its one name is "kafka-cluster")</summary>
    Cluster = 4,

    /// <summary>TRANSACTIONAL_ID</summary>
    TransactionalId = 5,
}
