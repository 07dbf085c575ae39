using System.Buffers.Binary;
using Microsoft.Extensions.Logging.Abstractions;
using Moldau.Broker.Handlers;
using Moldau.Protocol;
using Moldau.Protocol.Messages;
using Moldau.Protocol.Records;

namespace Moldau.Broker.Tests;

/// <summary>
/// The request pipeline through <see cref="KafkaBroker.Dispatch"/>: pipelined produce requests of a
/// connection append in arrival order even while they wait for their turn, a request without an
/// ordering key sees the writes before it, and a handler that throws answers with its API's error
/// response instead of closing the connection.
/// </summary>
public sealed class RequestPipelineTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "moldau-pipeline-" + Guid.NewGuid().ToString("N")[..10]);
    private KafkaBroker? _broker;
    private int _correlation;

    private KafkaBroker Broker => _broker!;

    public Task InitializeAsync()
    {
        _broker = new KafkaBroker(
            new BrokerOptions { LogDirs = [_dir], NumPartitions = 1, AdvertisedEndpoints = [new("PLAINTEXT", "broker.test", 9092)] },
            NullLoggerFactory.Instance,
            TimeProvider.System);
        _broker.Start();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        await Broker.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private byte[] Frame(ApiKey key, short version, IKafkaMessage body, out int correlation)
    {
        correlation = ++_correlation;
        var spec = ApiSpecs.Find((short)key)!;
        var header = new RequestHeader { ApiKey = (short)key, ApiVersion = version, CorrelationId = correlation, ClientId = "pipeline-test" };
        var headerVersion = spec.RequestHeaderVersion(version);
        var frame = new byte[header.Size(headerVersion) + body.Size(version)];
        var writer = new KafkaWriter(frame);
        header.Write(ref writer, headerVersion);
        body.Write(ref writer, version);
        return frame;
    }

    private static T Parse<T>(DispatchResult result, ApiKey key, short version, int correlation)
        where T : IKafkaMessage, new()
    {
        Assert.False(result.Close, result.CloseReason);
        var bytes = result.Response!.AsMemory(0, result.Length);
        Assert.Equal(result.Length - 4, BinaryPrimitives.ReadInt32BigEndian(bytes.Span));
        var reader = new KafkaReader(bytes[4..]);
        Assert.Equal(correlation, ResponseHeader.Read(ref reader, ApiSpecs.Find((short)key)!.ResponseHeaderVersion(version)));
        var response = new T();
        response.Read(ref reader, version);
        Assert.Equal(0, reader.Remaining);
        return response;
    }

    private async Task<T> Send<T>(ConnectionSession session, ApiKey key, short version, IKafkaMessage body)
        where T : IKafkaMessage, new()
    {
        var frame = Frame(key, version, body, out var correlation);
        return Parse<T>(await Broker.Dispatch(frame, session, CancellationToken.None), key, version, correlation);
    }

    private async Task CreateTopicAsync(ConnectionSession session, string name)
    {
        var created = await Send<CreateTopicsResponse>(session, ApiKey.CreateTopics, 7, new CreateTopicsRequest
        {
            Topics = [new() { Name = name, NumPartitions = 1, ReplicationFactor = 1 }],
            TimeoutMs = 5000,
        });
        Assert.Equal(0, created.Topics.Single().ErrorCode);
    }

    private static ProduceRequest OneRecord(string topic, int value) => new()
    {
        Acks = 1,
        TimeoutMs = 5000,
        TopicData = [new() { Name = topic, PartitionData = [new() { Index = 0, Records = RecordBatchBuilder.Build([new(null, BitConverter.GetBytes(value), 1_700_000_000_000 + value)]) }] }],
    };

    [Fact]
    public async Task PipelinedProducesForOnePartitionAppendInArrivalOrderWhileTheyWaitForTheirTurn()
    {
        var session = new ConnectionSession(1, null, "PLAINTEXT");
        await CreateTopicAsync(session, "ordered");
        var log = Broker.State.Topics.LogOf(Broker.State.Topics.Find("ordered")!.Partition(0)!)!;

        // Hold the connection's turn on the partition, as a produce request whose append is still
        // under way would: every request after it must wait, and then append in the order sent.
        Assert.True(session.Writes.Enter(log).IsCompletedSuccessfully);
        const int Requests = 60;
        var produces = new List<(Task<DispatchResult> Result, int Correlation)>();
        Task<DispatchResult>? listOffsets = null;
        var listCorrelation = 0;
        for (var i = 0; i < Requests; i++)
        {
            var frame = Frame(ApiKey.Produce, 9, OneRecord("ordered", i), out var correlation);
            produces.Add((Broker.Dispatch(frame, session, CancellationToken.None).AsTask(), correlation));
            if (i == Requests / 2)
            {
                // No ordering key: it must see every write dispatched before it.
                var list = Frame(ApiKey.ListOffsets, 7, new ListOffsetsRequest { ReplicaId = -1, Topics = [new() { Name = "ordered", Partitions = [new() { PartitionIndex = 0, Timestamp = -1 }] }] }, out listCorrelation);
                listOffsets = Broker.Dispatch(list, session, CancellationToken.None).AsTask();
            }
        }

        await Task.Delay(100);
        Assert.All(produces, p => Assert.False(p.Result.IsCompleted));
        Assert.False(listOffsets!.IsCompleted);
        Assert.Equal(0, log.LogEndOffset);

        session.Writes.Exit(log);
        for (var i = 0; i < Requests; i++)
        {
            var response = Parse<ProduceResponse>(await produces[i].Result, ApiKey.Produce, 9, produces[i].Correlation);
            var partition = response.Responses.Single().PartitionResponses.Single();
            Assert.Equal(0, partition.ErrorCode);
            Assert.Equal(i, partition.BaseOffset);
        }

        var offsets = Parse<ListOffsetsResponse>(await listOffsets, ApiKey.ListOffsets, 7, listCorrelation);
        Assert.True(offsets.Topics.Single().Partitions.Single().Offset >= (Requests / 2) + 1, "ListOffsets ran before the writes dispatched before it");
        Assert.True(session.Writes.IsIdle);

        // The records are in the log in the order sent.
        var fetched = await Send<FetchResponse>(session, ApiKey.Fetch, 12, new FetchRequest
        {
            MaxWaitMs = 0,
            MinBytes = 1,
            MaxBytes = 1 << 20,
            SessionEpoch = -1,
            Topics = [new() { Topic = "ordered", Partitions = [new() { Partition = 0, FetchOffset = 0, PartitionMaxBytes = 1 << 20 }] }],
        });
        var records = fetched.Responses.Single().Partitions.Single().Records!.Value;
        var values = new List<int>();
        for (var at = 0; at < records.Length;)
        {
            var size = (int)RecordBatch.DeclaredSize(records.Span[at..]);
            var batch = new RecordBatch(records.Slice(at, size));
            values.Add((int)(batch.BaseTimestamp - 1_700_000_000_000));
            at += size;
        }

        Assert.Equal(Enumerable.Range(0, Requests), values);
    }

    [Fact]
    public async Task AHandlerThatThrowsIsAnsweredWithItsApisErrorResponseAndTheSessionGoesOn()
    {
        var session = new ConnectionSession(2, null, "PLAINTEXT");
        await CreateTopicAsync(session, "listed");
        var registration = ApiRegistry.All.Single(r => r.Key == ApiKey.ListOffsets);
        var real = Broker.Pipeline.Find(ApiKey.ListOffsets)!;
        Broker.Pipeline.Bind(new ApiEndpoint<ListOffsetsRequest, ListOffsetsResponse>(registration, new ThrowingListOffsets()));

        var request = new ListOffsetsRequest
        {
            ReplicaId = -1,
            Topics = [new() { Name = "listed", Partitions = [new() { PartitionIndex = 0, Timestamp = -2 }, new() { PartitionIndex = 1, Timestamp = -1 }] }],
        };
        var failed = await Send<ListOffsetsResponse>(session, ApiKey.ListOffsets, 7, request);
        Assert.Equal([0, 1], failed.Topics.Single().Partitions.Select(p => p.PartitionIndex));
        Assert.All(failed.Topics.Single().Partitions, p => Assert.Equal((short)ErrorCode.UnknownServerError, p.ErrorCode));

        // The same connection goes on: other APIs, and the same one once it works again.
        var versions = await Send<ApiVersionsResponse>(session, ApiKey.ApiVersions, 3, new ApiVersionsRequest { ClientSoftwareName = "pipeline-test", ClientSoftwareVersion = "1.0" });
        Assert.Equal(0, versions.ErrorCode);
        Assert.Equal("pipeline-test", session.ClientSoftwareName);
        Assert.Equal("1.0", session.ClientSoftwareVersion);
        Assert.Equal("pipeline-test", session.ClientId);
        Broker.Pipeline.Bind(real);
        var answered = await Send<ListOffsetsResponse>(session, ApiKey.ListOffsets, 7, request);
        Assert.Equal([0, (short)ErrorCode.UnknownTopicOrPartition], answered.Topics.Single().Partitions.Select(p => p.ErrorCode));
    }

    [Fact]
    public async Task BeforeARequiredAuthenticationOnlyTheHandshakeApisAreServed()
    {
        var session = new ConnectionSession(3, null, "SASL", "SASL_PLAINTEXT", requiresAuthentication: true);
        Assert.Equal(ConnectionSession.AnonymousPrincipal, session.Principal);
        var versions = await Send<ApiVersionsResponse>(session, ApiKey.ApiVersions, 3, new ApiVersionsRequest());
        Assert.Equal(0, versions.ErrorCode);
        var metadata = await Broker.Dispatch(Frame(ApiKey.Metadata, 12, new MetadataRequest(), out _), session, CancellationToken.None);
        Assert.True(metadata.Close);

        session.Authentication = AuthenticationState.Authenticated;
        await Send<MetadataResponse>(session, ApiKey.Metadata, 12, new MetadataRequest());
    }

    [Fact]
    public void EveryRegisteredApiIsAdvertisedOnceAndBuildsAnErrorResponseForAnEmptyRequest()
    {
        Assert.Equal(ApiRegistry.All.Count, ApiRegistry.All.Select(r => r.Key).Distinct().Count());
        Assert.Equal(ApiRegistry.All.Select(r => r.Key).Order(), SupportedApis.All.Select(e => e.Key));
        foreach (var registration in ApiRegistry.All)
        {
            var endpoint = Broker.Pipeline.Find(registration.Key)!;
            var response = ErrorResponseOf(endpoint);
            var spec = ApiSpecs.Find((short)registration.Key)!;
            for (var v = registration.MinAdvertised; v <= registration.MaxVersion; v++)
            {
                Assert.True(response.Size(v) > 0 || registration.Key == ApiKey.Produce, $"{registration.Key} v{v}");
                response.ToBytes(v); // sizes and writes at every served version
            }
        }
    }

    private static IKafkaMessage ErrorResponseOf(ApiEndpoint endpoint)
    {
        var type = endpoint.GetType();
        var handler = type.GetProperty("Handler")!.GetValue(endpoint)!;
        var requestType = type.GetGenericArguments()[0];
        var request = Activator.CreateInstance(requestType)!;
        var context = new RequestContext(new RequestHeader { ApiVersion = endpoint.Registration.MaxVersion }, new ConnectionSession(9, null, "PLAINTEXT"), CancellationToken.None);
        var method = typeof(IApiHandler<,>).MakeGenericType(type.GetGenericArguments()).GetMethod("ErrorResponse")!;
        return (IKafkaMessage)method.Invoke(handler, [context, request, ErrorCode.UnknownServerError])!;
    }

    private sealed class ThrowingListOffsets : IApiHandler<ListOffsetsRequest, ListOffsetsResponse>
    {
        public async ValueTask<ListOffsetsResponse> HandleAsync(RequestContext context, ListOffsetsRequest request, CancellationToken cancellationToken)
        {
            await Task.Yield();
            throw new InvalidOperationException("a bug in a handler");
        }

        public ListOffsetsResponse ErrorResponse(RequestContext context, ListOffsetsRequest request, ErrorCode error) =>
            new ListOffsetsHandler(null!).ErrorResponse(context, request, error);
    }
}
