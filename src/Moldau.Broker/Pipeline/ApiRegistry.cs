using Moldau.Broker.Handlers;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker;

/// <summary>
/// Every API the broker serves, each registered once: key, versions, handler. ApiVersions
/// (<see cref="SupportedApis"/>) is derived from this list, and the pipeline dispatches by it. To
/// add an API, write its handler in Handlers/ and add one line here.
/// </summary>
internal static class ApiRegistry
{
    /// <summary>The registrations, in no particular order.</summary>
    public static readonly IReadOnlyList<ApiRegistration> All =
    [
        // librdkafka before 2.11 sends gzip, snappy and lz4 only when Produce v0 is advertised
        // (KAFKA-18659); v0-v2 carry the pre-0.11 message format and are refused.
        Api(ApiKey.Produce, 0, 11, s => new ProduceHandler(s.State), minServed: 3, sequenced: true),
        // Fetch v0-v3 would need down-conversion to the old message format.
        Api(ApiKey.Fetch, 4, 17, s => new FetchHandler(s.State)),
        Api(ApiKey.ListOffsets, 1, 10, s => new ListOffsetsHandler(s.State)),
        Api(ApiKey.Metadata, 0, 12, s => new MetadataHandler(s.State)),
        Api(ApiKey.ApiVersions, 0, 4, _ => new ApiVersionsHandler()),
        Api(ApiKey.DescribeTopicPartitions, 0, 0, s => new DescribeTopicPartitionsHandler(s.State)),
        Api(ApiKey.CreateTopics, 0, 7, s => new CreateTopicsHandler(s.State)),
        Api(ApiKey.DeleteTopics, 0, 6, s => new DeleteTopicsHandler(s.State)),
        Api(ApiKey.CreatePartitions, 0, 3, s => new CreatePartitionsHandler(s.State)),
        Api(ApiKey.InitProducerId, 0, 5, s => new InitProducerIdHandler(s.State)),
        Api(ApiKey.FindCoordinator, 0, 6, s => new FindCoordinatorHandler(s.State, s.EnsureOffsetsTopic)),
        Api(ApiKey.JoinGroup, 0, 9, s => new JoinGroupHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.SyncGroup, 0, 5, s => new SyncGroupHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.Heartbeat, 0, 4, s => new HeartbeatHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.LeaveGroup, 0, 5, s => new LeaveGroupHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.OffsetCommit, 0, 9, s => new OffsetCommitHandler(s.Groups, s.Authorizer, s.State.GroupOffsets)),
        Api(ApiKey.OffsetFetch, 0, 9, s => new OffsetFetchHandler(s.Groups, s.Authorizer, s.State.GroupOffsets)),
        Api(ApiKey.TxnOffsetCommit, 0, 4, s => new TxnOffsetCommitHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.ListGroups, 0, 5, s => new ListGroupsHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.DescribeGroups, 0, 5, s => new DescribeGroupsHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.DeleteGroups, 0, 2, s => new DeleteGroupsHandler(s.Groups, s.Authorizer, s.State.GroupOffsets)),
        Api(ApiKey.OffsetDelete, 0, 0, s => new OffsetDeleteHandler(s.Groups, s.Authorizer)),
        // KIP-848. v1 (regular expressions) is unstable in the specs Moldau holds but released in
        // Kafka 4.0, and librdkafka 2.x sends nothing else (SupportedApis.ReleasedSinceSpecs).
        Api(ApiKey.ConsumerGroupHeartbeat, 0, 1, s => new ConsumerGroupHeartbeatHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.ConsumerGroupDescribe, 0, 0, s => new ConsumerGroupDescribeHandler(s.Groups, s.Authorizer)),
        Api(ApiKey.AddPartitionsToTxn, 0, 4, s => new AddPartitionsToTxnHandler(s.State)),
        Api(ApiKey.AddOffsetsToTxn, 0, 4, s => new AddOffsetsToTxnHandler(s.State)),
        // v5 (KIP-890 part 2, an epoch bump per transaction) is unstable in the specs Moldau holds.
        Api(ApiKey.EndTxn, 0, 4, s => new EndTxnHandler(s.State)),
        Api(ApiKey.WriteTxnMarkers, 0, 1, s => new WriteTxnMarkersHandler(s.State)),
        Api(ApiKey.DescribeTransactions, 0, 0, s => new DescribeTransactionsHandler(s.State)),
        Api(ApiKey.ListTransactions, 0, 1, s => new ListTransactionsHandler(s.State)),
        Api(ApiKey.DescribeCluster, 0, 1, s => new DescribeClusterHandler(s.State)),
        Api(ApiKey.DescribeConfigs, 0, 4, s => new DescribeConfigsHandler(s.State)),
        Api(ApiKey.AlterConfigs, 0, 2, s => new AlterConfigsHandler(s.State)),
        Api(ApiKey.IncrementalAlterConfigs, 0, 1, s => new IncrementalAlterConfigsHandler(s.State)),
        Api(ApiKey.OffsetForLeaderEpoch, 0, 4, s => new OffsetForLeaderEpochHandler(s.State)),
        Api(ApiKey.DeleteRecords, 0, 2, s => new DeleteRecordsHandler(s.State)),
        Api(ApiKey.DescribeLogDirs, 0, 4, s => new DescribeLogDirsHandler(s.State)),
        Api(ApiKey.DescribeProducers, 0, 0, s => new DescribeProducersHandler(s.State)),
        Api(ApiKey.DescribeClientQuotas, 0, 1, s => new DescribeClientQuotasHandler(s.State)),
        Api(ApiKey.AlterClientQuotas, 0, 1, s => new AlterClientQuotasHandler(s.State)),
        Api(ApiKey.DescribeAcls, 0, 3, s => new DescribeAclsHandler(s.State)),
        Api(ApiKey.CreateAcls, 0, 3, s => new CreateAclsHandler(s.State)),
        Api(ApiKey.DeleteAcls, 0, 3, s => new DeleteAclsHandler(s.State)),
        Api(ApiKey.SaslHandshake, 0, 1, s => new SaslHandshakeHandler(s.State)),
        Api(ApiKey.SaslAuthenticate, 0, 2, s => new SaslAuthenticateHandler(s.State)),
        Api(ApiKey.DescribeUserScramCredentials, 0, 0, s => new DescribeUserScramCredentialsHandler(s.State)),
        Api(ApiKey.AlterUserScramCredentials, 0, 0, s => new AlterUserScramCredentialsHandler(s.State)),
    ];

    /// <summary>
    /// A registration: <paramref name="key"/> advertised from <paramref name="minVersion"/> to
    /// <paramref name="maxVersion"/> (within the spec's stable range, checked by
    /// <see cref="SupportedApis"/>), served from <paramref name="minServed"/> (default: all of them).
    /// </summary>
    public static ApiRegistration Api<TRequest, TResponse>(
        ApiKey key, short minVersion, short maxVersion, Func<HandlerServices, IApiHandler<TRequest, TResponse>> create, short? minServed = null, bool sequenced = false)
        where TRequest : class, IKafkaMessage, new()
        where TResponse : class, IKafkaMessage =>
        new ApiRegistration<TRequest, TResponse>(key, minVersion, maxVersion, minServed ?? minVersion, sequenced, create);
}
