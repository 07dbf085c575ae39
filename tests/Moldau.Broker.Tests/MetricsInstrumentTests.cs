using System.Diagnostics.Metrics;
using Moldau.Broker.Metrics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker.Tests;

/// <summary>
/// The metrics' hot path: what a produce or fetch adds to (<see cref="PartitionTraffic"/>), the
/// request times recorded per request (<see cref="RequestMetrics.Completed"/>) while a listener
/// takes every measurement as an exporter does, and the error walk of a response: none of them
/// allocates per request. And the error walk finds the codes Kafka's errorCounts would.
/// </summary>
public sealed class MetricsInstrumentTests
{
    [Fact]
    public void RequestTimesCountersAndErrorWalkAllocateNothingPerRequest()
    {
        using var metrics = new BrokerMetrics();
        var recorded = 0L;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == BrokerMetrics.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => recorded++);
        listener.Start();

        var traffic = new PartitionTraffic();
        var response = ProduceResponseWith(ErrorCode.None, ErrorCode.NotLeaderOrFollower);
        var walk = ErrorWalker<ProduceResponse>.Walk!;
        void Once(int i)
        {
            traffic.Produced(false, 1000, 10);
            traffic.Fetched(false);
            traffic.Sent(1000, 10);
            metrics.Requests.Completed((short)ApiKey.Produce, 9, 100, 200, 300, 400, 500 + i);
            walk(response, metrics.Requests.ErrorsOf(ApiKey.Produce));
        }

        for (var i = 0; i < 1000; i++)
        {
            Once(i); // warm up: JIT, the first measurement of each tag set
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            Once(i);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(11_000 * 5, recorded); // total, queue, local, remote, send per request
        Assert.Equal(11_000, traffic.MessagesIn / 10);
        Assert.Equal(11_000, traffic.FetchRequests);
    }

    [Fact]
    public void ErrorWalkFindsTopLevelAndNestedCodesOfWrappedReplies()
    {
        using var metrics = new BrokerMetrics();
        var observed = new List<(string Request, string Error, long Count)>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            // Only this test's broker: other tests' brokers in the process have the same instruments.
            if (instrument.Name == "kafka_network_requestmetrics_errors" && instrument.Meter == metrics.Meter)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) => observed.Add(((string)tags[0].Value!, (string)tags[1].Value!, value)));
        listener.Start();

        var tally = metrics.Requests.ErrorsOf(ApiKey.Produce);
        ErrorWalker<ProduceResponse>.Walk!(ProduceResponseWith(ErrorCode.None, ErrorCode.NotLeaderOrFollower, ErrorCode.NotLeaderOrFollower, ErrorCode.UnknownServerError), tally);
        ErrorWalker<FindCoordinatorResponse>.Walk!(new FindCoordinatorResponse { ErrorCode = (short)ErrorCode.CoordinatorNotAvailable }, metrics.Requests.ErrorsOf(ApiKey.FindCoordinator));
        listener.RecordObservableInstruments();

        Assert.Contains(("Produce", "NOT_LEADER_OR_FOLLOWER", 2L), observed);
        Assert.Contains(("Produce", "UNKNOWN_SERVER_ERROR", 1L), observed);
        Assert.Contains(("FindCoordinator", "COORDINATOR_NOT_AVAILABLE", 1L), observed);
        Assert.Equal(3, observed.Count);
        Assert.Equal("UNKNOWN_TOPIC_OR_PARTITION", RequestMetrics.ErrorName((int)ErrorCode.UnknownTopicOrPartition));
        Assert.Equal("SASL_AUTHENTICATION_FAILED", RequestMetrics.ErrorName((int)ErrorCode.SaslAuthenticationFailed));
    }

    private static ProduceResponse ProduceResponseWith(params ErrorCode[] codes)
    {
        var response = new ProduceResponse();
        var topic = response.AddResponsesItem();
        topic.Name = "t";
        for (var i = 0; i < codes.Length; i++)
        {
            var partition = topic.AddPartitionResponsesItem();
            partition.Index = i;
            partition.ErrorCode = (short)codes[i];
        }

        return response;
    }
}
