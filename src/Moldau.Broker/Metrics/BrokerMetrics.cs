using System.Diagnostics.Metrics;
using System.Globalization;
using Moldau.Broker.Topics;
using Moldau.Coordinator;

namespace Moldau.Broker.Metrics;

/// <summary>
/// The broker's metrics, as System.Diagnostics.Metrics instruments on one <see cref="Meter"/>
/// named <see cref="MeterName"/>, named as the Prometheus JMX exporter renders Kafka's MBeans
/// (docs/metrics.md lists them). Nearly everything is observed at scrape time from state the
/// broker keeps anyway: the partitions' traffic counters (<see cref="PartitionTraffic"/>), the
/// logs' offsets and sizes, the metadata image. The request path only adds to counters and
/// records into histograms (<see cref="RequestMetrics"/>).
/// </summary>
public sealed class BrokerMetrics : IDisposable
{
    /// <summary>The name of the broker's meter (an exporter listens to it by name).</summary>
    public const string MeterName = "Moldau.Broker";

    private readonly Meter _meter = new(MeterName);
    private readonly Counter<long> _failedAuthentications;
    private readonly Counter<long> _successfulAuthentications;
    private Func<TopicRegistry>? _topics;
    private volatile IReadOnlyList<GroupLag> _lags = [];

    /// <summary>This broker's meter: a listener tells its instruments from another broker's in the same process.</summary>
    internal Meter Meter => _meter;

    /// <summary>The instruments; the broker's state is attached by <see cref="Attach"/> once started.</summary>
    internal BrokerMetrics()
    {
        Requests = new RequestMetrics(_meter);
        _failedAuthentications = _meter.CreateCounter<long>("kafka_server_socket_server_metrics_failed_authentication", null, "Failed SASL authentications, per listener (Kafka's failed-authentication-total).");
        _successfulAuthentications = _meter.CreateCounter<long>("kafka_server_socket_server_metrics_successful_authentication", null, "Successful SASL authentications, per listener (successful-authentication-total).");

        Topic("kafka_server_brokertopicmetrics_bytesin", t => t.BytesIn, "Bytes of record batches appended for producers, per topic (Kafka's BytesInPerSec).");
        Topic("kafka_server_brokertopicmetrics_messagesin", t => t.MessagesIn, "Records appended for producers, per topic (MessagesInPerSec).");
        Topic("kafka_server_brokertopicmetrics_bytesout", t => t.BytesOut, "Bytes of record batches sent to fetches, per topic (BytesOutPerSec).");
        Topic("kafka_server_brokertopicmetrics_messagesout", t => t.MessagesOut, "Records in the batches sent to fetches, per topic (no Kafka equivalent).");
        Topic("kafka_server_brokertopicmetrics_totalproducerequests", t => t.ProduceRequests, "Produce requests, counted per partition, per topic (TotalProduceRequestsPerSec).");
        Topic("kafka_server_brokertopicmetrics_failedproducerequests", t => t.FailedProduceRequests, "Produce requests answered with an error, per partition, per topic (FailedProduceRequestsPerSec).");
        Topic("kafka_server_brokertopicmetrics_totalfetchrequests", t => t.FetchRequests, "Fetch requests, counted per partition, per topic (TotalFetchRequestsPerSec).");
        Topic("kafka_server_brokertopicmetrics_failedfetchrequests", t => t.FailedFetchRequests, "Fetch requests answered with an error for a partition, per topic (FailedFetchRequestsPerSec).");

        Partition("kafka_log_log_size", log => log.SizeInBytes, "Bytes of the partition's log segments (Kafka's kafka.log:type=Log,name=Size).");
        Partition("kafka_log_log_numlogsegments", log => log.Segments().Count, "Segments of the partition's log (NumLogSegments).");
        Partition("kafka_log_log_logendoffset", log => log.LogEndOffset, "The partition's log end offset (LogEndOffset).");
        Partition("kafka_log_log_logstartoffset", log => log.LogStartOffset, "The partition's log start offset (LogStartOffset).");
        Partition("kafka_cluster_partition_highwatermark", log => log.HighWatermark, "The partition's high watermark (no JMX MBean in Kafka 3+; as kafka_exporter calls it: kafka_topic_partition_current_offset).");

        _meter.CreateObservableGauge("kafka_server_replicamanager_partitioncount", () => Count(_ => true), null, "Partitions on this broker (PartitionCount).");
        _meter.CreateObservableGauge("kafka_server_replicamanager_leadercount", () => Count(p => p.Leader == Options?.NodeId), null, "Partitions this broker leads (LeaderCount).");
        _meter.CreateObservableGauge("kafka_server_replicamanager_underreplicatedpartitions", () => Count(p => p.Isr.Count < p.Replicas.Count), null, "Partitions whose in-sync replicas are fewer than their replicas (UnderReplicatedPartitions; 0 on one node).");
        _meter.CreateObservableGauge("kafka_controller_kafkacontroller_offlinepartitionscount", () => Count(p => p.IsOffline), null, "Partitions whose log could not be opened (OfflinePartitionsCount: on one node, the offline ones).");
        _meter.CreateObservableGauge("kafka_controller_kafkacontroller_globaltopiccount", () => _topics is { } t ? t().Topics.Count() : 0, null, "Topics (GlobalTopicCount).");
        _meter.CreateObservableGauge("kafka_controller_kafkacontroller_globalpartitioncount", () => Count(_ => true), null, "Partitions (GlobalPartitionCount).");

        _meter.CreateObservableGauge("kafka_consumergroup_lag", () => Lags(l => l.Lag), null, "High watermark minus the group's committed offset, per group and partition (as kafka_exporter names it; refreshed at each scrape).");
        _meter.CreateObservableGauge("kafka_consumergroup_current_offset", () => Lags(l => l.Committed), null, "The group's committed offset, per group and partition (kafka_exporter's name).");
    }

    /// <summary>Request counts, errors and times.</summary>
    public RequestMetrics Requests { get; }

    private BrokerOptions? Options { get; set; }

    /// <summary>Reads the broker's state from now on (called once it is started).</summary>
    internal void Attach(BrokerOptions options, Func<TopicRegistry> topics)
    {
        Options = options;
        _topics = topics;
    }

    /// <summary>A SASL authentication on <paramref name="listener"/> that succeeded or failed.</summary>
    public void Authenticated(string listener, bool succeeded) =>
        (succeeded ? _successfulAuthentications : _failedAuthentications).Add(1, new KeyValuePair<string, object?>("listener", listener));

    /// <summary>
    /// Reads every group's committed offsets from the group coordinator and the partitions' high
    /// watermarks, for the lag gauges of the next collection. Called before a scrape is collected:
    /// the gauges' callbacks can't wait for the coordinator.
    /// </summary>
    public async Task RefreshGroupLagAsync(GroupCoordinator groups, CancellationToken cancellationToken)
    {
        if (_topics is not { } topics)
        {
            return;
        }

        var lags = new List<GroupLag>();
        foreach (var (groupId, _, _, _) in await groups.ListAsync([]).WaitAsync(cancellationToken).ConfigureAwait(false))
        {
            foreach (var (topic, partition, committed, error) in await groups.FetchAsync(groupId, null).WaitAsync(cancellationToken).ConfigureAwait(false))
            {
                if (error != Protocol.ErrorCode.None || committed is null || topics().Find(topic)?.Partition(partition)?.Log is not { } log)
                {
                    continue;
                }

                lags.Add(new GroupLag(groupId, topic, partition, committed.Offset, Math.Max(0, log.HighWatermark - committed.Offset)));
            }
        }

        _lags = lags;
    }

    /// <inheritdoc/>
    public void Dispose() => _meter.Dispose();

    private void Topic(string name, Func<PartitionTraffic, long> read, string description) =>
        _meter.CreateObservableCounter(name, () => PerTopic(read), null, description);

    private IEnumerable<Measurement<long>> PerTopic(Func<PartitionTraffic, long> read)
    {
        if (_topics is not { } topics)
        {
            yield break;
        }

        foreach (var topic in topics().Topics)
        {
            var sum = 0L;
            foreach (var partition in topic.Partitions)
            {
                sum += read(partition.Host.Traffic);
            }

            yield return new(sum, new KeyValuePair<string, object?>("topic", topic.Name));
        }
    }

    private void Partition(string name, Func<Storage.IPartitionLog, long> read, string description) =>
        _meter.CreateObservableGauge(name, () => PerPartition(read), null, description);

    private IEnumerable<Measurement<long>> PerPartition(Func<Storage.IPartitionLog, long> read)
    {
        if (_topics is not { } topics)
        {
            yield break;
        }

        foreach (var topic in topics().Topics)
        {
            foreach (var partition in topic.Partitions)
            {
                long value;
                try
                {
                    if (partition.Log is not { } log)
                    {
                        continue;
                    }

                    value = read(log);
                }
                catch (ObjectDisposedException)
                {
                    continue; // deleted or closed between the image and the read
                }

                yield return new(value, new("topic", topic.Name), new("partition", partition.Index.ToString(CultureInfo.InvariantCulture)));
            }
        }
    }

    private int Count(Func<PartitionState, bool> predicate) =>
        _topics is { } topics ? topics().Topics.Sum(t => t.Partitions.Count(predicate)) : 0;

    private IEnumerable<Measurement<long>> Lags(Func<GroupLag, long> read)
    {
        foreach (var lag in _lags)
        {
            yield return new(read(lag), new("consumergroup", lag.Group), new("topic", lag.Topic), new("partition", lag.Partition.ToString(CultureInfo.InvariantCulture)));
        }
    }

    private sealed record GroupLag(string Group, string Topic, int Partition, long Committed, long Lag);
}
