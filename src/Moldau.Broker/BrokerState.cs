using Microsoft.Extensions.Logging;
using Moldau.Broker.Authorization;
using Moldau.Broker.Topics;
using Moldau.Coordinator;
using Moldau.Coordinator.Transactions;

namespace Moldau.Broker;

/// <summary>What handlers share: options, topics, the cluster's identity, the clock, the log.</summary>
internal sealed class BrokerState(BrokerOptions options, TopicRegistry topics, string clusterId, TimeProvider time, ILogger log)
{
    public BrokerOptions Options { get; } = options;

    public TopicRegistry Topics { get; } = topics;

    public string ClusterId { get; } = clusterId;

    public TimeProvider Time { get; } = time;

    public ILogger Log { get; } = log;

    /// <summary>Producer ids for InitProducerId, from blocks the metadata log records.</summary>
    public ProducerIdManager ProducerIds { get; } = new(topics.AllocateProducerIdBlock);

    /// <summary>The transaction coordinator, set once at start-up before the broker serves.</summary>
    public TransactionCoordinator Transactions { get; set; } = null!;

    /// <summary>Writes transaction markers into this broker's partitions (the coordinator's, and WriteTxnMarkers'), set at start-up.</summary>
    public ITransactionMarkerWriter TransactionMarkers { get; set; } = null!;

    /// <summary>The per-partition lock a transactional produce's check-and-append and a marker's append share (KIP-890 part 1).</summary>
    public Moldau.Broker.Transactions.TransactionalAppends TransactionalAppends { get; } = new();

    /// <summary>transaction.partition.verification.enable: a transactional batch is appended only to a partition of its open transaction.</summary>
    public bool VerifyTransactionalPartitions { get; init; } = true;

    /// <summary>Client quotas enforced (KIP-546 / KIP-219 / KIP-599).</summary>
    public Moldau.Broker.Quotas.ClientQuotaManager Quotas { get; } = new(topics, time);

    /// <summary>The live brokers in cluster mode (docs/cluster.md); null in single-node mode.</summary>
    public Cluster.IClusterMembership? Cluster { get; init; }

    /// <summary>Committed group offsets in PostgreSQL in cluster mode (docs/cluster.md); null in single-node mode.</summary>
    public Cluster.IGroupOffsetStore? GroupOffsets { get; init; }

    /// <summary>The broker's metrics (authentication counts); null in tests that build a state of their own.</summary>
    public Metrics.BrokerMetrics? Metrics { get; init; }

    /// <summary>Who may do what; allow-all until ACLs arrive.</summary>
    public IAuthorizer Authorizer { get; init; } = AllowAllAuthorizer.Instance;

    /// <summary>The SASL mechanisms of each listener.</summary>
    internal Security.SaslMechanismRegistry Sasl { get; } = Security.SaslMechanismRegistry.For(options.Properties, topics, log);

    /// <summary>This node's advertised endpoint for <paramref name="listenerName"/> (else the first).</summary>
    public AdvertisedEndpoint EndpointFor(string listenerName) =>
        Options.AdvertisedEndpoints.FirstOrDefault(e => string.Equals(e.ListenerName, listenerName, StringComparison.OrdinalIgnoreCase))
        ?? Options.AdvertisedEndpoints.FirstOrDefault()
        ?? new AdvertisedEndpoint("PLAINTEXT", "localhost", 9092);
}
