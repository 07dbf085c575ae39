using Microsoft.Extensions.Logging;
using Moldau.Broker.Handlers;
using Moldau.Broker.Topics;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker;

/// <summary>
/// The broker: owns the topic registry and the handlers, and turns request frames into
/// response frames. One switch on the API key; one handler per API in Handlers/.
/// </summary>
public sealed class KafkaBroker : IRequestDispatcher, IAsyncDisposable
{
    private readonly BrokerOptions _options;
    private readonly ILogger _log;
    private readonly TimeProvider _time;
    private BrokerState? _state;
    private MetadataHandler? _metadata;
    private DescribeTopicPartitionsHandler? _describeTopicPartitions;
    private ProduceHandler? _produce;
    private FetchHandler? _fetch;
    private ListOffsetsHandler? _listOffsets;
    private CreateTopicsHandler? _createTopics;
    private DeleteTopicsHandler? _deleteTopics;
    private CreatePartitionsHandler? _createPartitions;
    private InitProducerIdHandler? _initProducerId;

    /// <summary>Creates a broker over <paramref name="options"/>; call <see cref="Start"/> before serving.</summary>
    public KafkaBroker(BrokerOptions options, ILoggerFactory loggers, TimeProvider time)
    {
        _options = options;
        _log = loggers.CreateLogger("Moldau.Broker");
        _time = time;
    }

    /// <summary>Reads meta.properties and the metadata log, and opens every partition log.</summary>
    public void Start()
    {
        foreach (var dir in _options.LogDirs)
        {
            Directory.CreateDirectory(dir);
        }

        var clusterId = ClusterIdentity.LoadOrCreate(_options.LogDirs, _options.NodeId);
        var topics = new TopicRegistry(_options, _log, _time);
        topics.Load();
        _state = new BrokerState(_options, topics, clusterId, _time, _log);
        _metadata = new MetadataHandler(_state);
        _describeTopicPartitions = new DescribeTopicPartitionsHandler(_state);
        _produce = new ProduceHandler(_state);
        _fetch = new FetchHandler(_state);
        _listOffsets = new ListOffsetsHandler(_state);
        _createTopics = new CreateTopicsHandler(_state);
        _deleteTopics = new DeleteTopicsHandler(_state);
        _createPartitions = new CreatePartitionsHandler(_state);
        _initProducerId = new InitProducerIdHandler(_state);
        _log.LogInformation("broker {NodeId} of cluster {ClusterId} ready, log.dirs {LogDirs}", _options.NodeId, clusterId, string.Join(",", _options.LogDirs));
    }

    /// <inheritdoc/>
    public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionInfo connection, CancellationToken cancellationToken)
    {
        if (_state is null)
        {
            return ValueTask.FromResult(DispatchResult.CloseConnection("broker not started"));
        }

        if (!RequestHeader.TryPeek(frame.Span, out var apiKey, out var apiVersion, out var correlationId))
        {
            return Close($"frame of {frame.Length} bytes is shorter than a request header");
        }

        var served = SupportedApis.Find(apiKey);
        if (apiKey == (short)ApiKey.ApiVersions && (served is null || apiVersion > served.MaxVersion))
        {
            return ValueTask.FromResult(ApiVersionsHandler.UnsupportedVersion(correlationId));
        }

        if (served is null || apiVersion < served.MinAdvertised || apiVersion > served.MaxVersion)
        {
            return Close($"unsupported API key {apiKey} version {apiVersion}");
        }

        var spec = ApiSpecs.Find(apiKey)!;
        var header = new RequestHeader();
        var reader = new KafkaReader(frame);
        try
        {
            header.Read(ref reader, spec.RequestHeaderVersion(apiVersion));
            var context = new RequestContext(header, connection, cancellationToken);
            var responseHeader = spec.ResponseHeaderVersion(apiVersion);
            switch ((ApiKey)apiKey)
            {
                case ApiKey.ApiVersions:
                    Parse<ApiVersionsRequest>(ref reader, apiVersion);
                    return Respond(context, responseHeader, ApiVersionsHandler.Handle());
                case ApiKey.Metadata:
                    return Respond(context, responseHeader, _metadata!.Handle(context, Parse<MetadataRequest>(ref reader, apiVersion)));
                case ApiKey.DescribeTopicPartitions:
                    return Respond(context, responseHeader, _describeTopicPartitions!.Handle(Parse<DescribeTopicPartitionsRequest>(ref reader, apiVersion)));
                case ApiKey.ListOffsets:
                    return Respond(context, responseHeader, _listOffsets!.Handle(Parse<ListOffsetsRequest>(ref reader, apiVersion)));
                case ApiKey.Produce:
                    {
                        var request = Parse<ProduceRequest>(ref reader, apiVersion);
                        var response = _produce!.Handle(context, request, out var anyError);
                        if (request.Acks == 0 && context.Version >= 3)
                        {
                            // acks=0 gets no response; a failure closes the connection so the client
                            // refreshes its metadata, as Kafka does.
                            return anyError
                                ? Close("acks=0 produce failed; closing so the client refreshes its metadata")
                                : ValueTask.FromResult(DispatchResult.None);
                        }

                        return Respond(context, responseHeader, response);
                    }

                case ApiKey.CreateTopics:
                    return Respond(context, responseHeader, _createTopics!.Handle(Parse<CreateTopicsRequest>(ref reader, apiVersion)));
                case ApiKey.DeleteTopics:
                    return Respond(context, responseHeader, _deleteTopics!.Handle(context, Parse<DeleteTopicsRequest>(ref reader, apiVersion)));
                case ApiKey.CreatePartitions:
                    return Respond(context, responseHeader, _createPartitions!.Handle(Parse<CreatePartitionsRequest>(ref reader, apiVersion)));
                case ApiKey.InitProducerId:
                    return Respond(context, responseHeader, _initProducerId!.Handle(Parse<InitProducerIdRequest>(ref reader, apiVersion)));
                case ApiKey.Fetch:
                    return FetchAsync(context, responseHeader, Parse<FetchRequest>(ref reader, apiVersion));
                default:
                    return Close($"API key {apiKey} has no handler");
            }
        }
        catch (KafkaProtocolException e)
        {
            return Close($"unparseable {(ApiKey)apiKey} v{apiVersion} request: {e.Message}");
        }
    }

    private async ValueTask<DispatchResult> FetchAsync(RequestContext context, short responseHeader, FetchRequest request)
    {
        var response = await _fetch!.HandleAsync(context, request).ConfigureAwait(false);
        return ResponseWriter.Encode(context.Header.CorrelationId, responseHeader, response, context.Version);
    }

    private static T Parse<T>(ref KafkaReader reader, short version)
        where T : IKafkaMessage, new()
    {
        var message = new T();
        message.Read(ref reader, version);
        return message;
    }

    private static ValueTask<DispatchResult> Respond(RequestContext context, short headerVersion, IKafkaMessage body) =>
        ValueTask.FromResult(ResponseWriter.Encode(context.Header.CorrelationId, headerVersion, body, context.Version));

    private static ValueTask<DispatchResult> Close(string reason) => ValueTask.FromResult(DispatchResult.CloseConnection(reason));

    /// <summary>Closes every file (appends are synchronous, so none is in flight once connections are closed).</summary>
    public ValueTask DisposeAsync()
    {
        _state?.Topics.Dispose();
        _state = null;
        return ValueTask.CompletedTask;
    }
}
