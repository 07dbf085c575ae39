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
    /// <summary>UNKNOWN (a code this broker does not know)</summary>
    Unknown = 0,

    /// <summary>ANY (a filter only)</summary>
    Any = 1,

    /// <summary>TOPIC</summary>
    Topic = 2,

    /// <summary>GROUP</summary>
    Group = 3,

    /// <summary>CLUSTER (its one name is "kafka-cluster")</summary>
    Cluster = 4,

    /// <summary>TRANSACTIONAL_ID</summary>
    TransactionalId = 5,

    /// <summary>DELEGATION_TOKEN</summary>
    DelegationToken = 6,

    /// <summary>USER (for delegation tokens created on behalf of a user)</summary>
    User = 7,
}

/// <summary>Kafka's resource pattern types, with their codes.</summary>
internal enum PatternType : byte
{
    /// <summary>UNKNOWN</summary>
    Unknown = 0,

    /// <summary>ANY (a filter only: any pattern type, the name taken literally)</summary>
    Any = 1,

    /// <summary>MATCH (a filter only: every pattern that would match the name)</summary>
    Match = 2,

    /// <summary>LITERAL: the name itself, or every name when it is <c>*</c></summary>
    Literal = 3,

    /// <summary>PREFIXED: every name starting with it</summary>
    Prefixed = 4,
}

/// <summary>Kafka's ACL permission types, with their codes.</summary>
internal enum AclPermissionType : byte
{
    /// <summary>UNKNOWN</summary>
    Unknown = 0,

    /// <summary>ANY (a filter only)</summary>
    Any = 1,

    /// <summary>DENY</summary>
    Deny = 2,

    /// <summary>ALLOW</summary>
    Allow = 3,
}
