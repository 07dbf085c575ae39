using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>Retention driven by an injected clock: nothing goes before its time, everything due goes when the check runs.</summary>
public sealed class RetentionClockTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-retention-" + Guid.NewGuid().ToString("N")[..10]);
    private readonly FakeTimeProvider _clock = new(DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000));
    private KafkaBroker? _broker;
    private int _correlation;

    public Task InitializeAsync()
    {
        _broker = new KafkaBroker(
            new BrokerOptions
            {
                LogDirs = [_dir],
                AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)],
                Properties = new Dictionary<string, string> { ["log.retention.check.interval.ms"] = "60000", ["log.segment.delete.delay.ms"] = "0" },
            },
            NullLoggerFactory.Instance,
            _clock);
        _broker.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await _broker!.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private Task<T> Send<T>(ApiKey key, short version, IKafkaMessage request)
        where T : IKafkaMessage, new() => BrokerHarness.SendAsync<T>(_broker!, ++_correlation, key, version, request);

    private async Task<long> Earliest(string topic)
    {
        var r = await Send<ListOffsetsResponse>(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = topic, Partitions = [new() { PartitionIndex = 0, Timestamp = -2 }] }] });
        return r.Topics.Single().Partitions.Single().Offset;
    }

    private async Task<long> EarliestOnceSettled(string topic, long atLeast)
    {
        // The retention pass runs on the timer's thread right after the clock moves.
        for (var i = 0; i < 200 && await Earliest(topic) < atLeast; i++)
        {
            await Task.Delay(10);
        }

        return await Earliest(topic);
    }

    private async Task Produce(string topic, int batches, long timestamp)
    {
        for (var i = 0; i < batches; i++)
        {
            var batch = RecordBatchBuilder.Build([new(null, Encoding.UTF8.GetBytes(new string('x', 300)), timestamp)]);
            var r = await Send<ProduceResponse>(ApiKey.Produce, 9, new ProduceRequest { Acks = -1, TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = batch }] }] });
            Assert.Equal(0, r.Responses.Single().PartitionResponses.Single().ErrorCode);
        }
    }

    [Fact]
    public async Task SegmentsGoWhenTheClockSaysTheirRecordsAreOlderThanRetentionMs()
    {
        var created = await Send<CreateTopicsResponse>(ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics =
            [
                new() { Name = "timed", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "segment.bytes", Value = "1000" }, new() { Name = "retention.ms", Value = "3600000" }] },
                new() { Name = "sized", NumPartitions = 1, ReplicationFactor = 1, Configs = [new() { Name = "segment.bytes", Value = "1000" }, new() { Name = "retention.bytes", Value = "2000" }] },
            ],
        });
        Assert.All(created.Topics, t => Assert.Equal(0, t.ErrorCode));

        var start = _clock.GetUtcNow().ToUnixTimeMilliseconds();
        await Produce("timed", 6, start);            // offsets 0-5: two per segment
        await Produce("timed", 6, start + 1_800_000); // offsets 6-11: half an hour younger
        await Produce("sized", 12, start);

        // A minute on: the size limit applies at the first check; nothing is old enough yet.
        _clock.Advance(TimeSpan.FromMinutes(1));
        Assert.InRange(await EarliestOnceSettled("sized", 1), 6, 10);
        Assert.Equal(0, await Earliest("timed"));

        // 59 minutes after the first records: still inside retention.ms.
        _clock.Advance(TimeSpan.FromMinutes(58));
        await Task.Delay(100);
        Assert.Equal(0, await Earliest("timed"));

        // Past the hour: the first six records go, the younger ones stay.
        _clock.Advance(TimeSpan.FromMinutes(2));
        Assert.Equal(6, await EarliestOnceSettled("timed", 6));

        // Past an hour and a half: every closed segment has gone; the active one stays.
        _clock.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal(10, await EarliestOnceSettled("timed", 10));
    }
}
