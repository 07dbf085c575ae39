using Microsoft.Extensions.Logging;
using Moldau.Broker.Handlers;
using Moldau.Protocol;
using Moldau.Protocol.Messages;

namespace Moldau.Broker;

/// <summary>
/// Turns a request frame into a response: peek the API key and version, check them against the
/// registrations, check the connection's session may use the API, then the endpoint decodes,
/// runs the stages (<see cref="IRequestStage"/>), calls the handler and encodes.
/// </summary>
internal sealed class RequestPipeline
{
    private readonly ApiEndpoint?[] _byKey;
    private readonly IRequestStage[] _stages;

    /// <summary>Binds every registration to the broker's <paramref name="services"/>.</summary>
    public RequestPipeline(IEnumerable<ApiRegistration> registrations, HandlerServices services, ILogger log, IRequestStage[]? stages = null)
    {
        var endpoints = registrations.Select(r => r.Bind(services)).ToArray();
        _byKey = new ApiEndpoint?[endpoints.Max(e => (int)e.Key) + 1];
        foreach (var endpoint in endpoints)
        {
            Bind(endpoint);
        }

        _stages = stages ?? [];
        Log = log;
        Quotas = services.State.Quotas;
    }

    /// <summary>Client quotas, applied to each response before it is encoded.</summary>
    public Moldau.Broker.Quotas.ClientQuotaManager Quotas { get; }

    /// <summary>Error and throttle counts per API (null: not counted).</summary>
    public Moldau.Broker.Metrics.RequestMetrics? Metrics { get; init; }

    /// <summary>Where failures are logged.</summary>
    public ILogger Log { get; }

    /// <summary>Request headers, kept for the next request.</summary>
    public ReusePool<RequestHeader> Headers { get; } = new();

    /// <summary>The endpoint serving <paramref name="api"/>, or null.</summary>
    public ApiEndpoint? Find(ApiKey api) => (int)api < _byKey.Length ? _byKey[(int)api] : null;

    /// <summary>Serves <paramref name="endpoint"/>'s API with it from now on (tests put a handler of their own in).</summary>
    public void Bind(ApiEndpoint endpoint)
    {
        if (_byKey[(int)endpoint.Key] is { } existing && existing.Registration != endpoint.Registration
            && (existing.Registration.MinAdvertised != endpoint.Registration.MinAdvertised || existing.Registration.MaxVersion != endpoint.Registration.MaxVersion))
        {
            throw new InvalidOperationException($"{endpoint.Key} is registered with other versions");
        }

        _byKey[(int)endpoint.Key] = endpoint;
    }

    /// <summary>Handles a frame (request header and body) from <paramref name="session"/>.</summary>
    public ValueTask<DispatchResult> Dispatch(ReadOnlyMemory<byte> frame, ConnectionSession session, CancellationToken cancellationToken)
    {
        if (session.Sasl is { HandshakeVersion: 0, Exchange: not null })
        {
            // After SaslHandshake v0 every frame is a bare SASL token until the exchange ends, as
            // Kafka's SaslServerAuthenticator reads them: no request header to look at.
            return Find(ApiKey.SaslAuthenticate) is ApiEndpoint<SaslAuthenticateRequest, SaslReply<SaslAuthenticateResponse>> { Handler: SaslAuthenticateHandler authenticate }
                ? authenticate.HandleRawTokenAsync(session, frame, cancellationToken)
                : Close("SASL token after SaslHandshake v0, but SaslAuthenticate is not served");
        }

        if (!RequestHeader.TryPeek(frame.Span, out var apiKey, out var apiVersion, out var correlationId))
        {
            return Close($"frame of {frame.Length} bytes is shorter than a request header");
        }

        var endpoint = apiKey >= 0 && apiKey < _byKey.Length ? _byKey[apiKey] : null;
        if (apiKey == (short)ApiKey.ApiVersions && (endpoint is null || apiVersion > endpoint.Registration.MaxVersion))
        {
            return ValueTask.FromResult(ApiVersionsHandler.UnsupportedVersion(correlationId));
        }

        if (endpoint is null || apiVersion < endpoint.Registration.MinAdvertised || apiVersion > endpoint.Registration.MaxVersion)
        {
            return Close($"unsupported API key {apiKey} version {apiVersion}");
        }

        if (!session.MayUse(endpoint.Key))
        {
            // Kafka closes a connection that sends anything but the SASL APIs before authenticating.
            return Close($"{endpoint.Key} before authentication on {session.ListenerName}");
        }

        if (session.Sasl is { } sasl && sasl.Expired(endpoint.Key) is { } expired)
        {
            // KIP-368: a session past its lifetime that did not re-authenticate is closed at its next request.
            return Close(expired);
        }

        return endpoint.Dispatch(this, frame, apiVersion, session, cancellationToken);
    }

    /// <summary>Runs the stages before a handler; the first refusal wins.</summary>
    public ErrorCode Admit(in RequestContext context, ApiKey api)
    {
        foreach (var stage in _stages)
        {
            var error = stage.OnRequest(context, api);
            if (error != ErrorCode.None)
            {
                return error;
            }
        }

        return ErrorCode.None;
    }

    /// <summary>Tells the stages a response of <paramref name="bytes"/> bytes is on its way.</summary>
    public void Responded(in RequestContext context, ApiKey api, int bytes)
    {
        foreach (var stage in _stages)
        {
            stage.OnResponse(context, api, bytes);
        }
    }

    private static ValueTask<DispatchResult> Close(string reason) => ValueTask.FromResult(DispatchResult.CloseConnection(reason));
}
