using Confluent.Kafka;
using Confluent.Kafka.Admin;
using Moldau.IntegrationTests.Infrastructure;
using Moldau.Protocol.Messages;
using ApiKey = Moldau.Protocol.ApiKey;

namespace Moldau.IntegrationTests;

/// <summary>
/// Authorized operations (KIP-430): without an authorizer Kafka reports every operation the
/// resource type supports when asked, and Integer.MIN_VALUE when not.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class AuthorizedOperationsTests(SharedBroker shared)
{
    private static readonly AclOperation[] TopicOperations =
        [AclOperation.Read, AclOperation.Write, AclOperation.Create, AclOperation.Delete, AclOperation.Alter, AclOperation.Describe, AclOperation.DescribeConfigs, AclOperation.AlterConfigs];

    private static readonly AclOperation[] ClusterOperations =
        [AclOperation.Create, AclOperation.Alter, AclOperation.Describe, AclOperation.ClusterAction, AclOperation.DescribeConfigs, AclOperation.AlterConfigs, AclOperation.IdempotentWrite];

    private static readonly AclOperation[] GroupOperations = [AclOperation.Read, AclOperation.Describe, AclOperation.Delete];

    private static IOrderedEnumerable<AclOperation> Sorted(IEnumerable<AclOperation>? operations) => (operations ?? []).Order();

    [Fact]
    public async Task AdminClientSeesEveryOperationOfTopicsClusterAndGroups()
    {
        Librdkafka.EnsureLoaded();
        var topic = "ops-" + Guid.NewGuid().ToString("N")[..8];
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = shared.Broker.BootstrapServers }).Build();
        await admin.CreateTopicsAsync([new TopicSpecification { Name = topic, NumPartitions = 1, ReplicationFactor = 1 }]);

        var topics = await admin.DescribeTopicsAsync(TopicCollection.OfTopicNames([topic]), new DescribeTopicsOptions { IncludeAuthorizedOperations = true });
        Assert.Equal(Sorted(TopicOperations), Sorted(topics.TopicDescriptions.Single().AuthorizedOperations));

        var cluster = await admin.DescribeClusterAsync(new DescribeClusterOptions { IncludeAuthorizedOperations = true });
        Assert.Equal(Sorted(ClusterOperations), Sorted(cluster.AuthorizedOperations));

        // A group with a member, so that the group exists.
        var group = "ops-group-" + topic;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig
        {
            BootstrapServers = shared.Broker.BootstrapServers,
            GroupId = group,
            SessionTimeoutMs = 6000,
        }).Build();
        consumer.Subscribe(topic);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (consumer.Assignment.Count == 0 && DateTime.UtcNow < deadline)
        {
            consumer.Consume(TimeSpan.FromMilliseconds(100));
        }

        var groups = await admin.DescribeConsumerGroupsAsync([group], new DescribeConsumerGroupsOptions { IncludeAuthorizedOperations = true });
        Assert.Equal(Sorted(GroupOperations), Sorted(groups.ConsumerGroupDescriptions.Single().AuthorizedOperations));
        consumer.Close();
    }

    [Fact]
    public async Task TheBitSetsFollowKafkasOperationCodesAndAreAbsentUnlessAsked()
    {
        await using var client = await KafkaTestClient.ConnectAsync(shared.Broker.Port);
        var topic = "ops-raw-" + Guid.NewGuid().ToString("N")[..8];

        // READ 3, WRITE 4, CREATE 5, DELETE 6, ALTER 7, DESCRIBE 8, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11.
        const int topicBits = 0b1101_1111_1000;

        // CREATE 5, ALTER 7, DESCRIBE 8, CLUSTER_ACTION 9, DESCRIBE_CONFIGS 10, ALTER_CONFIGS 11, IDEMPOTENT_WRITE 12.
        const int clusterBits = 0b1_1111_1010_0000;

        var asked = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 10, new MetadataRequest
        {
            Topics = [new() { Name = topic }],
            AllowAutoTopicCreation = true,
            IncludeClusterAuthorizedOperations = true,
            IncludeTopicAuthorizedOperations = true,
        });
        Assert.Equal(clusterBits, asked.ClusterAuthorizedOperations);
        Assert.Equal(topicBits, asked.Topics.Single().TopicAuthorizedOperations);

        var notAsked = await client.SendAsync<MetadataResponse>(ApiKey.Metadata, 10, new MetadataRequest { Topics = [new() { Name = topic }] });
        Assert.Equal(int.MinValue, notAsked.ClusterAuthorizedOperations);
        Assert.Equal(int.MinValue, notAsked.Topics.Single().TopicAuthorizedOperations);

        var cluster = await client.SendAsync<DescribeClusterResponse>(ApiKey.DescribeCluster, 1, new DescribeClusterRequest { IncludeClusterAuthorizedOperations = false, EndpointType = 1 });
        Assert.Equal(int.MinValue, cluster.ClusterAuthorizedOperations);

        // READ 3, DESCRIBE 8, DELETE 6.
        var groups = await client.SendAsync<DescribeGroupsResponse>(ApiKey.DescribeGroups, 5, new DescribeGroupsRequest { Groups = ["g-" + topic], IncludeAuthorizedOperations = true });
        Assert.Equal(0b1_0100_1000, groups.Groups.Single().AuthorizedOperations);
        var groupsNotAsked = await client.SendAsync<DescribeGroupsResponse>(ApiKey.DescribeGroups, 5, new DescribeGroupsRequest { Groups = ["g-" + topic] });
        Assert.Equal(int.MinValue, groupsNotAsked.Groups.Single().AuthorizedOperations);

        var partitions = await client.SendAsync<DescribeTopicPartitionsResponse>(ApiKey.DescribeTopicPartitions, 0, new DescribeTopicPartitionsRequest { Topics = [new() { Name = topic }], ResponsePartitionLimit = 10 });
        Assert.Equal(topicBits, partitions.Topics.Single().TopicAuthorizedOperations);
    }
}
