namespace Moldau.Protocol;

/// <summary>Kafka's error codes (the subset a single-node broker returns, with Kafka's numbers).</summary>
public enum ErrorCode : short
{
    /// <summary>An unexpected server error.</summary>
    UnknownServerError = -1,

    /// <summary>No error.</summary>
    None = 0,

    /// <summary>The requested offset is outside the log.</summary>
    OffsetOutOfRange = 1,

    /// <summary>The message failed its CRC check or is otherwise corrupt.</summary>
    CorruptMessage = 2,

    /// <summary>The topic or partition does not exist on this broker.</summary>
    UnknownTopicOrPartition = 3,

    /// <summary>The fetch size is invalid.</summary>
    InvalidFetchSize = 4,

    /// <summary>No leader for the partition.</summary>
    LeaderNotAvailable = 5,

    /// <summary>This broker is not the leader.</summary>
    NotLeaderOrFollower = 6,

    /// <summary>The request timed out.</summary>
    RequestTimedOut = 7,

    /// <summary>The broker is not available.</summary>
    BrokerNotAvailable = 8,

    /// <summary>The replica is not available.</summary>
    ReplicaNotAvailable = 9,

    /// <summary>The request included a message larger than the server accepts.</summary>
    MessageTooLarge = 10,

    /// <summary>The controller moved.</summary>
    StaleControllerEpoch = 11,

    /// <summary>The metadata field of the offset request was too large.</summary>
    OffsetMetadataTooLarge = 12,

    /// <summary>The server disconnected before a response was received.</summary>
    NetworkException = 13,

    /// <summary>The coordinator is loading.</summary>
    CoordinatorLoadInProgress = 14,

    /// <summary>The coordinator is not available.</summary>
    CoordinatorNotAvailable = 15,

    /// <summary>This is not the correct coordinator.</summary>
    NotCoordinator = 16,

    /// <summary>The topic name is invalid.</summary>
    InvalidTopicException = 17,

    /// <summary>A batch is larger than the segment size.</summary>
    RecordListTooLarge = 18,

    /// <summary>Fewer in-sync replicas than required.</summary>
    NotEnoughReplicas = 19,

    /// <summary>Written to fewer in-sync replicas than required.</summary>
    NotEnoughReplicasAfterAppend = 20,

    /// <summary>The acks value is invalid.</summary>
    InvalidRequiredAcks = 21,

    /// <summary>The generation id is not the current one.</summary>
    IllegalGeneration = 22,

    /// <summary>The group member's protocol type or protocols are incompatible.</summary>
    InconsistentGroupProtocol = 23,

    /// <summary>The group id is invalid.</summary>
    InvalidGroupId = 24,

    /// <summary>The member id is not in the current generation.</summary>
    UnknownMemberId = 25,

    /// <summary>The session timeout is outside the broker's range.</summary>
    InvalidSessionTimeout = 26,

    /// <summary>The group is rebalancing.</summary>
    RebalanceInProgress = 27,

    /// <summary>The committing offset data size is invalid.</summary>
    InvalidCommitOffsetSize = 28,

    /// <summary>Not authorized to access the topic.</summary>
    TopicAuthorizationFailed = 29,

    /// <summary>Not authorized to access the group.</summary>
    GroupAuthorizationFailed = 30,

    /// <summary>Not authorized for the cluster.</summary>
    ClusterAuthorizationFailed = 31,

    /// <summary>The timestamp is out of the acceptable range.</summary>
    InvalidTimestamp = 32,

    /// <summary>The SASL mechanism is not supported.</summary>
    UnsupportedSaslMechanism = 33,

    /// <summary>The request is not valid in the SASL state.</summary>
    IllegalSaslState = 34,

    /// <summary>The version of the API is not supported.</summary>
    UnsupportedVersion = 35,

    /// <summary>The topic already exists.</summary>
    TopicAlreadyExists = 36,

    /// <summary>The number of partitions is invalid.</summary>
    InvalidPartitions = 37,

    /// <summary>The replication factor is invalid.</summary>
    InvalidReplicationFactor = 38,

    /// <summary>The replica assignment is invalid.</summary>
    InvalidReplicaAssignment = 39,

    /// <summary>The configuration is invalid.</summary>
    InvalidConfig = 40,

    /// <summary>This is not the controller.</summary>
    NotController = 41,

    /// <summary>The request is malformed or otherwise invalid.</summary>
    InvalidRequest = 42,

    /// <summary>The message format version does not support the request.</summary>
    UnsupportedForMessageFormat = 43,

    /// <summary>A policy rejected the request.</summary>
    PolicyViolation = 44,

    /// <summary>The producer's sequence number is out of order.</summary>
    OutOfOrderSequenceNumber = 45,

    /// <summary>The producer's sequence number is a duplicate.</summary>
    DuplicateSequenceNumber = 46,

    /// <summary>The producer's epoch is fenced.</summary>
    InvalidProducerEpoch = 47,

    /// <summary>The producer attempted a transactional operation in an invalid state.</summary>
    InvalidTxnState = 48,

    /// <summary>The producer id mapping is invalid.</summary>
    InvalidProducerIdMapping = 49,

    /// <summary>The transaction timeout is invalid.</summary>
    InvalidTransactionTimeout = 50,

    /// <summary>Concurrent transactions.</summary>
    ConcurrentTransactions = 51,

    /// <summary>The transaction coordinator is fenced.</summary>
    TransactionCoordinatorFenced = 52,

    /// <summary>Transactional id authorization failed.</summary>
    TransactionalIdAuthorizationFailed = 53,

    /// <summary>Security features are disabled.</summary>
    SecurityDisabled = 54,

    /// <summary>The operation is not attempted.</summary>
    OperationNotAttempted = 55,

    /// <summary>Disk error when trying to access the log on the broker.</summary>
    KafkaStorageError = 56,

    /// <summary>The log directory was not found.</summary>
    LogDirNotFound = 57,

    /// <summary>SASL authentication failed.</summary>
    SaslAuthenticationFailed = 58,

    /// <summary>The producer id is not known to the broker.</summary>
    UnknownProducerId = 59,

    /// <summary>A partition reassignment is in progress.</summary>
    ReassignmentInProgress = 60,

    /// <summary>Delegation tokens are disabled.</summary>
    DelegationTokenAuthDisabled = 61,

    /// <summary>The delegation token was not found.</summary>
    DelegationTokenNotFound = 62,

    /// <summary>The delegation token owner mismatched.</summary>
    DelegationTokenOwnerMismatch = 63,

    /// <summary>Delegation token request not allowed.</summary>
    DelegationTokenRequestNotAllowed = 64,

    /// <summary>Delegation token authorization failed.</summary>
    DelegationTokenAuthorizationFailed = 65,

    /// <summary>The delegation token expired.</summary>
    DelegationTokenExpired = 66,

    /// <summary>The principal type is not supported.</summary>
    InvalidPrincipalType = 67,

    /// <summary>The group is not empty.</summary>
    NonEmptyGroup = 68,

    /// <summary>The group id does not exist.</summary>
    GroupIdNotFound = 69,

    /// <summary>The fetch session id was not found.</summary>
    FetchSessionIdNotFound = 70,

    /// <summary>The fetch session epoch is invalid.</summary>
    InvalidFetchSessionEpoch = 71,

    /// <summary>No matching listener.</summary>
    ListenerNotFound = 72,

    /// <summary>Topic deletion is disabled.</summary>
    TopicDeletionDisabled = 73,

    /// <summary>The leader epoch in the request is older than the broker's.</summary>
    FencedLeaderEpoch = 74,

    /// <summary>The leader epoch in the request is newer than the broker's.</summary>
    UnknownLeaderEpoch = 75,

    /// <summary>The compression type is not supported for the request version.</summary>
    UnsupportedCompressionType = 76,

    /// <summary>The broker epoch is stale.</summary>
    StaleBrokerEpoch = 77,

    /// <summary>The leader has no offset for the timestamp or epoch.</summary>
    OffsetNotAvailable = 78,

    /// <summary>The group member needs a valid member id (KIP-394).</summary>
    MemberIdRequired = 79,

    /// <summary>The preferred leader was not available.</summary>
    PreferredLeaderNotAvailable = 80,

    /// <summary>The group has reached its maximum size.</summary>
    GroupMaxSizeReached = 81,

    /// <summary>A static member with the same instance id was fenced.</summary>
    FencedInstanceId = 82,

    /// <summary>Eligible leaders are not available.</summary>
    EligibleLeadersNotAvailable = 83,

    /// <summary>Leader election not needed.</summary>
    ElectionNotNeeded = 84,

    /// <summary>No reassignment in progress.</summary>
    NoReassignmentInProgress = 85,

    /// <summary>The group subscribed to the topic.</summary>
    GroupSubscribedToTopic = 86,

    /// <summary>The record is invalid.</summary>
    InvalidRecord = 87,

    /// <summary>There are unstable offsets that need to be cleared.</summary>
    UnstableOffsetCommit = 88,

    /// <summary>The throttling quota has been exceeded.</summary>
    ThrottlingQuotaExceeded = 89,

    /// <summary>A newer producer with the same transactional id fenced this one.</summary>
    ProducerFenced = 90,

    /// <summary>A resource was not found.</summary>
    ResourceNotFound = 91,

    /// <summary>A duplicate resource was found.</summary>
    DuplicateResource = 92,

    /// <summary>The update version is not found.</summary>
    UnacceptableCredential = 93,

    /// <summary>The voter set is inconsistent.</summary>
    InconsistentVoterSet = 94,

    /// <summary>The update version is invalid.</summary>
    InvalidUpdateVersion = 95,

    /// <summary>Unable to update finalized features.</summary>
    FeatureUpdateFailed = 96,

    /// <summary>Principal deserialization failed.</summary>
    PrincipalDeserializationFailure = 97,

    /// <summary>The snapshot was not found.</summary>
    SnapshotNotFound = 98,

    /// <summary>The position is out of range.</summary>
    PositionOutOfRange = 99,

    /// <summary>This server does not host this topic id.</summary>
    UnknownTopicId = 100,

    /// <summary>The broker id was already registered.</summary>
    DuplicateBrokerRegistration = 101,

    /// <summary>The broker id is not registered.</summary>
    BrokerIdNotRegistered = 102,

    /// <summary>The topic id is inconsistent.</summary>
    InconsistentTopicId = 103,

    /// <summary>The cluster id is inconsistent.</summary>
    InconsistentClusterId = 104,

    /// <summary>The transactional id was not found.</summary>
    TransactionalIdNotFound = 105,

    /// <summary>The fetch session was rejected because the topic id changed.</summary>
    FetchSessionTopicIdError = 106,

    /// <summary>The new ISR contains ineligible replicas.</summary>
    IneligibleReplica = 107,

    /// <summary>The new partition epoch is stale.</summary>
    NewLeaderElected = 108,

    /// <summary>The request was for a topic or partition in the middle of an offset move.</summary>
    OffsetMovedToTieredStorage = 109,

    /// <summary>The member epoch is fenced.</summary>
    FencedMemberEpoch = 110,

    /// <summary>The member epoch is unreleased.</summary>
    UnreleasedInstanceId = 111,

    /// <summary>The assignor is not supported.</summary>
    UnsupportedAssignor = 112,

    /// <summary>The member epoch is stale.</summary>
    StaleMemberEpoch = 113,

    /// <summary>The request contains a mismatched client id.</summary>
    MismatchedEndpointType = 114,

    /// <summary>The endpoint type is not supported.</summary>
    UnsupportedEndpointType = 115,

    /// <summary>The controller id is unknown.</summary>
    UnknownControllerId = 116,

    /// <summary>The subscription id is unknown.</summary>
    UnknownSubscriptionId = 117,

    /// <summary>The telemetry payload is too large.</summary>
    TelemetryTooLarge = 118,

    /// <summary>The registration is invalid.</summary>
    InvalidRegistration = 119,

    /// <summary>The transaction was aborted because a newer one started.</summary>
    TransactionAbortable = 120,
}
